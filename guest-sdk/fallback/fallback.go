package fallback

import (
	"fmt"

	"github.com/breakwater-dev/breakwater/guest-sdk"
)

// Func is a fallback policy: it receives the input of one call and returns
// the action the host takes once retries are over.
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
type Func func(in *guest.Input) guest.FallbackDecision

var handler Func

// Handle registers f as the module's fallback policy. Call it exactly once, from
// an init function of package main, so that it runs during _initialize,
// before the host's first call. Handle panics if f is nil or if a handler is
// already registered.
func Handle(f Func) {
	if f == nil {
		panic("fallback.Handle: nil handler")
	}
	if handler != nil {
		panic("fallback.Handle: a handler is already registered")
	}
	handler = f
}

// Call runs the registered handler on in, exactly as the bw_fallback export does
// once the input is decoded. Use it to unit-test a policy natively, without a
// wasm runtime. It panics if no handler is registered.
//
// Call panics if the handler returns an action that is not one of the ABI v1
// actions (see abi.FallbackAction.Valid), rather than hand the host an output
// it would reject.
func Call(in *guest.Input) guest.FallbackDecision {
	if handler == nil {
		panic("bw_fallback: no handler registered: call fallback.Handle from an init function")
	}
	out := handler(in)
	if !out.Action.Valid() {
		panic(fmt.Sprintf("bw_fallback: handler returned unknown action %q", out.Action))
	}
	return out
}
