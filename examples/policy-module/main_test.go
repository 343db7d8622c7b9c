package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/guest-sdk/sdktest"
)

// The module's tests run the built module on the runtime's own engine
// (sdktest), under the fuel budget the route will give it
// (routes[].modules.retry.limits.fuel): a decision that fits here fits in
// production. sdktest measures each call on a fresh instance, which decodes
// the config first (about 6M fuel here; a warm instance that decoded it
// before spends a tenth of that), so the figure is the worst case.
const routeFuel = 10_000_000

func load(t *testing.T, config string) *sdktest.Module {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	wasm := filepath.Join(t.TempDir(), "inventory-retry.wasm")
	if err := sdktest.Build(ctx, ".", wasm); err != nil {
		t.Fatal(err)
	}
	m, err := sdktest.Load(ctx, wasm, sdktest.Options{Config: []byte(config), Fuel: routeFuel})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestDecide(t *testing.T) {
	m := load(t, `{"initial_ms":100,"max_ms":1000,"max_attempts":4}`)
	status := func(code int32) abi.AttemptError { return abi.AttemptError{Kind: abi.ErrorStatus, Status: code} }
	tests := []struct {
		name    string
		in      abi.Input
		retry   bool
		delayMs int64
	}{
		{"503, first attempt", abi.Input{Attempt: 1, Error: status(503)}, true, 100},
		{"503, third attempt", abi.Input{Attempt: 3, Error: status(503)}, true, 400},
		{"timeouts back off up to max_ms", abi.Input{Attempt: 3, MaxAttempts: 9, Error: abi.AttemptError{Kind: abi.ErrorTimeout}}, true, 400},
		{"404 is not retried", abi.Input{Attempt: 1, Error: status(404)}, false, 0},
		{"429 waits as long as the service asks", abi.Input{Attempt: 1, Error: status(429), RetryAfterMs: 800}, true, 800},
		{"Retry-After is capped by max_ms", abi.Input{Attempt: 1, Error: status(503), RetryAfterMs: 60_000}, true, 1000},
		{"max_attempts reached", abi.Input{Attempt: 4, Error: status(503)}, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Route, tc.in.MessageID = "inventory", "m-1"
			d, st, err := m.Retry(context.Background(), &tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Retry != tc.retry || d.DelayMs != tc.delayMs {
				t.Fatalf("got retry %v after %d ms (%s), want %v after %d ms", d.Retry, d.DelayMs, d.Reason, tc.retry, tc.delayMs)
			}
			if st.Fuel <= 0 || st.Fuel > routeFuel {
				t.Fatalf("fuel %d, budget %d", st.Fuel, routeFuel)
			}
		})
	}
}

// TestBadConfig: a config the module cannot read is a breach whose error
// carries the module's own message (the runtime then decides natively).
func TestBadConfig(t *testing.T) {
	m := load(t, `{"initial_ms":"soon"}`)
	_, _, err := m.Retry(context.Background(), &abi.Input{Route: "inventory", Attempt: 1, Error: abi.AttemptError{Kind: abi.ErrorTimeout}})
	var be *sdktest.BreachError
	if !errors.As(err, &be) || be.Kind != sdktest.BreachTrap || !strings.Contains(err.Error(), "inventory-retry: bad config") {
		t.Fatalf("want a trap breach with the module's message, got %v", err)
	}
}
