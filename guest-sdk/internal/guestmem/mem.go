package guestmem

import (
	"fmt"
	"unsafe"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// Input buffers come from an arena: chunks of chunkSize bytes, handed out
// front to back and never reused. The decoded Input aliases its buffer (no
// copy), and since no buffer is ever handed out twice, the strings and byte
// slices of every decoded Input stay valid and unchanged for as long as they
// are referenced (each keeps its chunk alive). This saves an allocation per
// call, the dearest thing in a Go guest: one chunk serves hundreds of calls.
const (
	chunkSize = 64 << 10
	// Inputs above maxArenaInput get a buffer of their own.
	maxArenaInput = chunkSize / 4
	// shrinkAbove is the capacity above which the output buffer is
	// released after use instead of being kept for the next call, so that
	// one large output does not pin its memory for the life of the instance.
	shrinkAbove = 1 << 20
)

var (
	chunk  []byte    // the current arena chunk; chunk[used:] is free
	used   int       // bytes of chunk handed out
	inBuf  []byte    // the buffer handed out by the last Alloc
	outBuf []byte    // the encoded output of the last call
	input  abi.Input // the decoded input, reused (its maps too)
)

// Alloc returns the address of a fresh buffer of size bytes (never the null
// address, even for size 0). The buffer is never handed out again.
func Alloc(size uint32) uintptr {
	if uint64(size) > uint64(^uint(0)>>2) {
		panic(fmt.Sprintf("bw_alloc: size %d too large", size))
	}
	n := int(size)
	if n > maxArenaInput {
		inBuf = make([]byte, n)
		return uintptr(unsafe.Pointer(&inBuf[0]))
	}
	// Round up to 8 bytes (and at least 8, for a non-null address when
	// size is 0).
	rounded := (n + 8) &^ 7
	if used+rounded > len(chunk) {
		chunk = make([]byte, chunkSize)
		used = 0
	}
	// The capacity is at least 8: a zero-capacity slice would point at the
	// chunk's start, not at chunk[used].
	inBuf = chunk[used : used+n : used+rounded]
	ptr := uintptr(unsafe.Pointer(&chunk[used]))
	used += rounded
	return ptr
}

// Region returns the bytes [ptr, ptr+size) of the buffer handed out by the
// last Alloc. It panics (the host sees a trap) when the region is not inside
// that buffer: the host must pass what bw_alloc returned.
func Region(fn string, ptr uintptr, size uint32) []byte {
	if inBuf == nil {
		panic(fmt.Sprintf("%s: called without a bw_alloc first", fn))
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(inBuf)))
	if ptr < base || uint64(ptr-base)+uint64(size) > uint64(len(inBuf)) {
		panic(fmt.Sprintf("%s: input region [%#x, +%d) is outside the buffer bw_alloc returned [%#x, +%d)", fn, ptr, size, base, len(inBuf)))
	}
	off := int(ptr - base)
	return inBuf[off : off+int(size) : off+int(size)]
}

// Input decodes the Input record at [ptr, ptr+size), which must lie in the
// buffer of the last Alloc. A record that does not decode panics: the host
// broke the contract, and a trap is the only honest answer.
//
// The returned record, and its Flags and Headers maps, are reused by the next
// call. Its strings and byte slices are not: they point into the input
// buffer, which is never reused.
func Input(fn string, ptr uintptr, size uint32) *abi.Input {
	b := Region(fn, ptr, size)
	inBuf = nil // consumed: a second call with the same input traps
	if err := input.UnmarshalABINoCopy(b); err != nil {
		panic(fmt.Sprintf("%s: %v", fn, err))
	}
	return &input
}

// OutBuf returns the output buffer, emptied, for a kind function to append
// its encoded record to. Pass the result to Output.
func OutBuf() []byte {
	if cap(outBuf) > shrinkAbove {
		outBuf = nil
	}
	return outBuf[:0]
}

// Output keeps b alive until the next call and returns its address and
// length.
func Output(b []byte) (ptr uintptr, size uint32) {
	outBuf = b
	if len(b) == 0 {
		return 0, 0
	}
	return uintptr(unsafe.Pointer(&b[0])), uint32(len(b))
}
