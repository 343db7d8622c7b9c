//go:build wasip1

package guest

import (
	"runtime"
	"unsafe"

	"github.com/breakwater-dev/breakwater/guest-sdk/internal/guestmem"
)

// bwABIVersion is the bw_abi_version export: the ABI version this module
// speaks.
//
//go:wasmexport bw_abi_version
func bwABIVersion() int32 { return Version }

// bwAlloc is the bw_alloc export: a buffer of at least size bytes for the
// host to write the next input record into. It stays valid until the next
// bw_alloc.
//
//go:wasmexport bw_alloc
func bwAlloc(size uint32) uint32 { return uint32(guestmem.Alloc(size)) }

//go:wasmimport bw_host log
func bwHostLog(level int32, ptr unsafe.Pointer, size uint32)

func hostLog(level Level, msg []byte) {
	if len(msg) == 0 {
		bwHostLog(int32(level), nil, 0)
		return
	}
	bwHostLog(int32(level), unsafe.Pointer(&msg[0]), uint32(len(msg)))
	runtime.KeepAlive(msg)
}
