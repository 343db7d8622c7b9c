// Package abi defines the records exchanged between the Breakwater host and
// a policy module, and their wire encoding (ABI v1, see docs/abi.md).
//
// The records are encoded in the protocol buffers wire format, hand-written on
// top of a copy of protowire (guest-sdk/internal/wire: the SDK depends on the
// standard library only) so that guests stay small: any language with a protobuf
// library (or forty lines of varint code) can speak the ABI. Unknown fields are
// skipped, so a newer host can add fields without breaking older guests.
//
// The package is shared by the host (which encodes inputs and decodes
// outputs) and by guest-sdk (which does the reverse inside the module). It is
// pure Go, builds for any platform including wasip1, and does not use
// reflection.
//
// # Codec
//
// Each record of the ABI (Input, RetryDecision, FallbackDecision, Stub,
// ClassifyDecision) has:
//
//   - MarshalABI(dst) []byte: appends the encoding to dst. Deterministic
//     (map entries in key order) and allocation-free when dst has room.
//   - SizeABI() int: the number of bytes MarshalABI appends.
//   - UnmarshalABI(b) error: decodes b, replacing the record's contents. The
//     decoded strings and byte slices share one private copy of b.
//
// Input also has UnmarshalABINoCopy, which decodes without copying, for a
// caller that never modifies b afterwards (the guest SDK). AttemptError is
// encoded embedded in Input.
//
// Decoding errors are *DecodeError values naming the record, the field and
// the byte offset at fault; a missing required field (Input.route,
// RetryDecision.retry, FallbackDecision.action, Stub.payload,
// ClassifyDecision.verdict) wraps ErrMissingField, a value outside its
// allowed set (an empty route, an unknown fallback action or verdict) wraps
// ErrInvalidValue.
package abi
