//go:build wasip1

package classify

import "github.com/breakwater-dev/breakwater/guest-sdk/internal/guestmem"

// export is the bw_classify export of ABI v1: it decodes the Input record the
// host wrote at [ptr, ptr+size) (inside the buffer bw_alloc returned), runs
// the handler and returns the encoded output record as ptr<<32 | len. Any
// panic (bad input, no handler, a panicking handler) traps.
//
//go:wasmexport bw_classify
func export(ptr, size uint32) uint64 {
	in := guestmem.Input("bw_classify", uintptr(ptr), size)
	out := Call(in)
	return guestmem.Pack(out.MarshalABI(guestmem.OutBuf()))
}
