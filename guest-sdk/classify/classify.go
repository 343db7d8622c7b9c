package classify

import "github.com/breakwater-dev/breakwater/guest-sdk"

// Func is a classify policy: it receives the input of one call, the
// target's answer included, and returns the verdict on that answer:
// success, retryable failure or permanent failure.
//
// The Input, and its Flags, Headers and ResponseHeaders maps, belong to the
// SDK and are reused by the next call: do not keep them after f returns. The
// strings and byte slices in it (Payload, Config, ResponseBody) may be kept;
// they are never reused.
//
// A Func runs on the instance's only thread. It may keep state between calls
// (instances are reused) but must not rely on it: the host may discard and
// replace an instance at any time. A Func that panics, or returns a verdict
// other than the three of the ABI, makes the call a breach; the host applies
// the route's native rules instead.
type Func func(in *guest.Input) guest.ClassifyDecision

var handler Func

// Handle registers f as the module's classify policy. Call it exactly once,
// from an init function of package main, so that it runs during
// _initialize, before the host's first call. Handle panics if f is nil or if
// a handler is already registered.
func Handle(f Func) {
	if f == nil {
		panic("classify.Handle: nil handler")
	}
	if handler != nil {
		panic("classify.Handle: a handler is already registered")
	}
	handler = f
}

// Call runs the registered handler on in, exactly as the bw_classify export
// does once the input is decoded. Use it to unit-test a policy natively,
// without a wasm runtime. It panics if no handler is registered.
func Call(in *guest.Input) guest.ClassifyDecision {
	if handler == nil {
		panic("bw_classify: no handler registered: call classify.Handle from an init function")
	}
	return handler(in)
}
