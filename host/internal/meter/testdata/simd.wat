(module (func (export "v") (result i32) (drop (v128.const i64x2 1 2)) (i32.const 0)))
