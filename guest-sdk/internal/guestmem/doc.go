// Package guestmem manages the guest side of the ABI v1 memory exchange: the
// input buffers handed out by bw_alloc, decoding the input a kind function
// receives, and the output buffer whose (ptr, len) a kind function returns.
//
// A module instance is single-threaded and the host makes one call at a
// time:
//
//   - Alloc (behind bw_alloc) hands out a fresh buffer from an arena of
//     64 KiB chunks (a larger input gets its own). Buffers are never handed
//     out twice, so the decoded Input can point into its buffer instead of
//     copying it, and its strings stay valid as long as anyone holds them:
//     one allocation per few hundred calls instead of one per call, which
//     matters because allocating is the dearest thing a Go guest does.
//   - Input (at the start of bw_retry, bw_fallback, bw_stub, bw_classify)
//     checks that the host's (ptr, len) lies inside that buffer and decodes
//     the record into a reused abi.Input.
//   - Output keeps the encoded output alive until the next call, for the host
//     to read from the returned (ptr, len).
//
// Nothing here is part of the public SDK: team modules use the guest
// (guest-sdk), retry, fallback, stub and classify packages.
package guestmem
