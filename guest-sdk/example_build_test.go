package guest_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/guest-sdk/sdktest"
)

// TestExampleModule builds guest-sdk/example, the module of the package
// documentation, with the documented one-line build, and runs it on the
// host's engine (sdktest).
func TestExampleModule(t *testing.T) {
	ctx := context.Background()
	wasm := filepath.Join(t.TempDir(), "example.wasm")
	if err := sdktest.Build(ctx, "./example", wasm); err != nil {
		t.Fatal(err)
	}
	m, err := sdktest.Load(ctx, wasm, sdktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// Importing guest-sdk/retry, and no other kind, exports bw_retry only.
	wantExports := []string{"_initialize", "bw_abi_version", "bw_alloc", "bw_retry"}
	if got := m.Exports(); !reflect.DeepEqual(got, wantExports) {
		t.Errorf("exports = %v, want %v", got, wantExports)
	}

	tests := []struct {
		name    string
		in      abi.Input
		want    abi.RetryDecision
		wantLog string
	}{
		{"503", abi.Input{Route: "orders", Attempt: 1, Error: abi.AttemptError{Kind: abi.ErrorStatus, Status: 503}},
			abi.RetryDecision{Retry: true, DelayMs: 100}, ""},
		{"timeout, second attempt", abi.Input{Route: "orders", Attempt: 2, Error: abi.AttemptError{Kind: abi.ErrorTimeout}},
			abi.RetryDecision{Retry: true, DelayMs: 200}, ""},
		{"404", abi.Input{Route: "orders", Attempt: 1, Error: abi.AttemptError{Kind: abi.ErrorStatus, Status: 404}},
			abi.RetryDecision{Retry: false, Reason: "client error"}, ""},
		{"429", abi.Input{Route: "orders", Attempt: 1, Error: abi.AttemptError{Kind: abi.ErrorStatus, Status: 429}},
			abi.RetryDecision{Retry: true, DelayMs: 100}, ""},
		{"third attempt logs", abi.Input{Route: "orders", Attempt: 3, Error: abi.AttemptError{Kind: abi.ErrorConnect}},
			abi.RetryDecision{Retry: false, Reason: "three attempts"}, "giving up route=orders attempt=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, st, err := m.Retry(ctx, &tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("Retry = %+v, %v; want %+v", got, err, tt.want)
			}
			if st.Fuel <= 0 {
				t.Errorf("fuel %d: the call was not metered", st.Fuel)
			}
			switch {
			case tt.wantLog == "" && len(st.Logs) > 0:
				t.Errorf("unexpected log entries %q", st.Logs)
			case tt.wantLog != "" && (len(st.Logs) != 1 || !strings.HasSuffix(st.Logs[0], tt.wantLog) || !strings.HasPrefix(st.Logs[0], "INFO")):
				t.Errorf("logs = %q, want one INFO entry %q", st.Logs, tt.wantLog)
			}
		})
	}

	// The limits are the engine's: a budget too small for the decision is a
	// fuel breach, as it would be in production.
	tight, err := sdktest.Load(ctx, wasm, sdktest.Options{Fuel: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer tight.Close()
	_, _, err = tight.Retry(ctx, &tests[0].in)
	var be *sdktest.BreachError
	if !errors.As(err, &be) || be.Kind != sdktest.BreachFuel {
		t.Errorf("with 1000 fuel: err = %v, want a fuel breach", err)
	}
}
