;; Fixtures for the meter tests: loops, recursion, nested blocks, br_table,
;; memory. Build: wat2wasm arith.wat -o arith.wasm
(module
  (memory 1 4)
  (global $g (mut i32) (i32.const 7))
  (func (export "sum") (param $n i32) (result i64)
    (local $i i32) (local $acc i64)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $acc))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "classify") (param $x i32) (result i32)
    (block $c (block $b (block $a
      (br_table $a $b $c (local.get $x)))
      (return (i32.add (global.get $g) (i32.const 100))))
      (return (i32.const 200)))
    (i32.const 300))
  (func (export "memory_roundtrip") (param $v i64) (result i64)
    (i64.store offset=8 (i32.const 0) (local.get $v))
    (memory.fill (i32.const 100) (i32.const 1) (i32.const 16))
    (i64.add (i64.load offset=8 (i32.const 0)) (i64.extend_i32_u (i32.load8_u (i32.const 100)))))
  (func (export "grow") (param $pages i32) (result i32)
    (memory.grow (local.get $pages)))
  (func (export "spin")
    (loop $forever (br $forever)))
  (func (export "busy") (param $n i32) (result i32)
    ;; the compute-heavy guest of the benchmarks: n iterations of arithmetic
    (local $i i32) (local $x i32)
    (local.set $x (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1664525)) (i32.const 1013904223)))
        (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 13))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $x))
)
