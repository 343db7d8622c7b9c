;; retry-constant: the smallest ABI v1 policy module. It implements one kind,
;; retry, and always answers the same decision:
;;   RetryDecision{retry: true, delay_ms: 100, reason: "constant"}
;; It ignores its input, imports nothing, and is the baseline module of the
;; benchmarks (the cost of the ABI round trip itself).
;;
;; Build: wat2wasm modules/retry-constant.wat -o modules/retry-constant.wasm
(module
  ;; One 64 KiB page: bytes [16, 30) hold the encoded decision, inputs go
  ;; at 1024 and up (the memory grows when an input needs more room).
  (memory (export "memory") 1)

  ;; The encoded RetryDecision (protobuf wire format, see docs/abi.md):
  ;;   08 01          field 1 retry    = true (varint)
  ;;   10 64          field 2 delay_ms = 100 (varint)
  ;;   1a 08 ...      field 3 reason   = "constant" (8 bytes)
  (data (i32.const 16) "\08\01\10\64\1a\08constant")

  ;; bw_abi_version() -> i32: this module speaks ABI v1.
  (func (export "bw_abi_version") (result i32)
    i32.const 1)

  ;; bw_alloc(size i32) -> i32: the input buffer is always at 1024; grow the
  ;; memory if 1024+size does not fit. Trap if the memory cannot grow.
  (func (export "bw_alloc") (param $size i32) (result i32)
    (local $need i32)
    ;; pages needed = ceil((1024 + size) / 65536)
    (local.set $need
      (i32.shr_u
        (i32.add (i32.add (local.get $size) (i32.const 1024)) (i32.const 65535))
        (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq
              (memory.grow (i32.sub (local.get $need) (memory.size)))
              (i32.const -1))
          (then unreachable))))
    i32.const 1024)

  ;; bw_retry(ptr i32, len i32) -> i64: (out_ptr << 32) | out_len = (16 << 32) | 14.
  (func (export "bw_retry") (param $ptr i32) (param $len i32) (result i64)
    i64.const 68719476750)
)
