//go:build wasip1

package guestmem

// Pack keeps b alive until the next call and returns its (ptr, len) packed as
// ABI v1 requires: ptr in the high 32 bits, len in the low 32 bits.
func Pack(b []byte) uint64 {
	ptr, size := Output(b)
	return uint64(uint32(ptr))<<32 | uint64(size)
}
