package stub

import "github.com/breakwater-dev/breakwater/guest-sdk"

// Func is a stub generator: it receives the input of one call and returns
// the stub response served in place of the target's.
//
// The Input, and its Flags and Headers maps, belong to the SDK and are
// reused by the next call: do not keep them after f returns. The strings and
// byte slices in it (Payload, Config) may be kept; they are never reused.
//
// A Func runs on the instance's only thread. It may keep state between calls
// (instances are reused) but must not rely on it: the host may discard and
// replace an instance at any time. A Func that panics makes the call trap;
// the host counts the trap as a breach and applies the route's native policy
// instead.
type Func func(in *guest.Input) guest.Stub

var handler Func

// Handle registers f as the module's stub generator. Call it exactly once,
// from an init function of package main, so that it runs during _initialize,
// before the host's first call. Handle panics if f is nil or if a handler is
// already registered.
func Handle(f Func) {
	if f == nil {
		panic("stub.Handle: nil handler")
	}
	if handler != nil {
		panic("stub.Handle: a handler is already registered")
	}
	handler = f
}

// Call runs the registered handler on in, exactly as the bw_stub export does
// once the input is decoded. Use it to unit-test a policy natively, without a
// wasm runtime. It panics if no handler is registered.
func Call(in *guest.Input) guest.Stub {
	if handler == nil {
		panic("bw_stub: no handler registered: call stub.Handle from an init function")
	}
	return handler(in)
}
