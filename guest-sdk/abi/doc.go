// Package abi defines the records exchanged between the Breakwater host and
// a policy module, and their wire encoding (ABI v1, see docs/abi.md).
//
// The records are encoded in the protocol buffers wire format, hand-written on
// top of protowire so that guests stay small: any language with a protobuf
// library (or forty lines of varint code) can speak the ABI. Unknown fields are
// skipped, so a newer host can add fields without breaking older guests.
//
// The package is shared by the host (which encodes inputs and decodes
// outputs) and by guest-sdk (which does the reverse inside the module).
package abi
