package guestmem

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// write puts b where Alloc says, as the host does.
func write(b []byte) (uintptr, uint32) {
	ptr := Alloc(uint32(len(b)))
	copy(inBuf, b)
	return ptr, uint32(len(b))
}

func TestAllocSizes(t *testing.T) {
	seen := map[uintptr]bool{}
	for _, size := range []uint32{0, 1, 8, 1024, 1025, maxArenaInput, maxArenaInput + 1, 70_000, 0, 10} {
		ptr := Alloc(size)
		if ptr == 0 {
			t.Fatalf("Alloc(%d) returned the null address", size)
		}
		if len(inBuf) != int(size) || uintptr(unsafe.Pointer(unsafe.SliceData(inBuf))) != ptr {
			t.Fatalf("Alloc(%d): buffer of %d bytes at %#x, returned %#x", size, len(inBuf), uintptr(unsafe.Pointer(unsafe.SliceData(inBuf))), ptr)
		}
		if seen[ptr] {
			t.Fatalf("Alloc(%d) handed out %#x twice", size, ptr)
		}
		seen[ptr] = true
	}
}

func TestArenaNeverReuses(t *testing.T) {
	// Enough calls to go through several chunks: the strings of every
	// decoded input must survive all the calls after it.
	var routes []string
	for i := range 3 * chunkSize / 64 {
		in := abi.Input{Route: fmt.Sprintf("route-%05d", i), Payload: make([]byte, i%50)}
		ptr, n := write(in.MarshalABI(nil))
		routes = append(routes, Input("bw_test", ptr, n).Route)
	}
	for i, r := range routes {
		if want := fmt.Sprintf("route-%05d", i); r != want {
			t.Fatalf("route of call %d is now %q, want %q", i, r, want)
		}
	}
}

func TestInputDecodes(t *testing.T) {
	want := abi.Input{Route: "orders", Attempt: 2, Headers: map[string]string{"k": "v"}, Payload: []byte("p")}
	ptr, n := write(want.MarshalABI(nil))
	got := Input("bw_test", ptr, n)
	if got.Route != "orders" || got.Attempt != 2 || got.Headers["k"] != "v" || string(got.Payload) != "p" {
		t.Fatalf("Input = %+v", got)
	}
	payload := got.Payload
	// The next call reuses the record: stale fields must be gone.
	ptr, n = write((&abi.Input{Route: "next", Payload: []byte("q")}).MarshalABI(nil))
	got = Input("bw_test", ptr, n)
	if got.Route != "next" || got.Attempt != 0 || len(got.Headers) != 0 || string(got.Payload) != "q" {
		t.Fatalf("second Input = %+v", got)
	}
	if string(payload) != "p" {
		t.Errorf("the first payload changed to %q", payload)
	}
}

func TestInputConsumesBuffer(t *testing.T) {
	ptr, n := write((&abi.Input{Route: "r"}).MarshalABI(nil))
	Input("bw_test", ptr, n)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "without a bw_alloc") {
			t.Errorf("second decode of one buffer: panic %v", r)
		}
	}()
	Input("bw_test", ptr, n)
}

func TestRegionChecks(t *testing.T) {
	Alloc(100)
	base := uintptr(unsafe.Pointer(&inBuf[0]))
	// inBuf is 100 bytes, in a larger chunk: the region check must use the
	// buffer's bounds, not the chunk's.
	tests := []struct {
		name string
		ptr  uintptr
		size uint32
		ok   bool
	}{
		{"whole buffer", base, uint32(len(inBuf)), true},
		{"inside", base + 10, 20, true},
		{"empty at end", base + uintptr(len(inBuf)), 0, true},
		{"before", base - 1, 10, false},
		{"past the end", base + 10, uint32(len(inBuf)), false},
		{"huge", base, ^uint32(0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if (r == nil) != tt.ok {
					t.Errorf("Region(%#x, %d): panic %v, want ok=%v", tt.ptr, tt.size, r, tt.ok)
				}
				if r != nil && !strings.Contains(r.(string), "outside the buffer bw_alloc returned") {
					t.Errorf("panic message %q", r)
				}
			}()
			if b := Region("bw_test", tt.ptr, tt.size); len(b) != int(tt.size) {
				t.Errorf("Region returned %d bytes, want %d", len(b), tt.size)
			}
		})
	}
}

func TestInputPanicsOnBadRecord(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "bw_test: abi: decoding Input.route") {
			t.Errorf("panic = %v, want a decoding error naming the export and field", r)
		}
	}()
	ptr, n := write([]byte{0x0a, 0x80})
	Input("bw_test", ptr, n)
}

func TestOutput(t *testing.T) {
	b := append(OutBuf(), "out"...)
	ptr, n := Output(b)
	if n != 3 || ptr != uintptr(unsafe.Pointer(&b[0])) {
		t.Errorf("Output = %#x, %d", ptr, n)
	}
	if ptr, n := Output(nil); ptr != 0 || n != 0 {
		t.Errorf("Output(nil) = %#x, %d; want 0, 0", ptr, n)
	}
}
