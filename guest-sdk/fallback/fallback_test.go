package fallback

import (
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk"
)

// mustPanic runs f and returns its panic message, failing if it does not
// panic.
func mustPanic(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("no panic")
		}
		msg, _ = r.(string)
	}()
	f()
	return ""
}

func TestHandle(t *testing.T) {
	t.Cleanup(func() { handler = nil })
	handler = nil
	if msg := mustPanic(t, func() { Call(&guest.Input{Route: "r"}) }); !strings.Contains(msg, "no handler registered") {
		t.Errorf("Call without a handler: panic %q", msg)
	}
	if msg := mustPanic(t, func() { Handle(nil) }); !strings.Contains(msg, "nil handler") {
		t.Errorf("Handle(nil): panic %q", msg)
	}
	var seen *guest.Input
	Handle(func(in *guest.Input) guest.FallbackDecision {
		seen = in
		return guest.FallbackDecision{Action: guest.FallbackStub}
	})
	in := &guest.Input{Route: "r"}
	if got := Call(in); !(got.Action == guest.FallbackStub) || seen != in {
		t.Errorf("Call = %+v (handler saw %p, want %p)", got, seen, in)
	}
	if msg := mustPanic(t, func() { Handle(func(*guest.Input) guest.FallbackDecision { return guest.FallbackDecision{} }) }); !strings.Contains(msg, "already registered") {
		t.Errorf("second Handle: panic %q", msg)
	}
}

func TestCallRejectsUnknownAction(t *testing.T) {
	t.Cleanup(func() { handler = nil })
	handler = func(*guest.Input) guest.FallbackDecision { return guest.FallbackDecision{Action: "drop"} }
	if msg := mustPanic(t, func() { Call(&guest.Input{Route: "r"}) }); !strings.Contains(msg, `unknown action "drop"`) {
		t.Errorf("panic %q", msg)
	}
}
