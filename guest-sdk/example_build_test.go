package sdk_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/guest-sdk/sdktest"
)

// buildModule builds the package main in dir as a policy module, the way the
// SDK documentation says, into a temporary directory.
func buildModule(t *testing.T, dir string) []byte {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go tool is not installed (%v): cannot build a module", err)
	}
	out := filepath.Join(t.TempDir(), "module.wasm")
	cmd := exec.Command(gotool, "build", "-trimpath", "-buildvcs=false", "-buildmode=c-shared", "-ldflags=-s", "-o", out, dir)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// TestExampleModule builds guest-sdk/example, the module of the package
// documentation, and runs it as the host would.
func TestExampleModule(t *testing.T) {
	wasm := buildModule(t, "./example")
	ctx := context.Background()
	rt, err := sdktest.NewRuntime(ctx, sdktest.Options{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	m, err := rt.Load(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}

	if v, err := m.ABIVersion(ctx); err != nil || v != abi.Version {
		t.Errorf("bw_abi_version() = %d, %v; want %d", v, err, abi.Version)
	}
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
			before := len(m.Logs())
			got, err := m.Retry(ctx, &tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("Retry = %+v, %v; want %+v", got, err, tt.want)
			}
			logs := m.Logs()[before:]
			switch {
			case tt.wantLog == "" && len(logs) > 0:
				t.Errorf("unexpected log entries %+v", logs)
			case tt.wantLog != "" && (len(logs) != 1 || logs[0].Message != tt.wantLog || logs[0].Level != 0):
				t.Errorf("logs = %+v, want one INFO entry %q", logs, tt.wantLog)
			}
		})
	}

	// A bad input traps, with the reason on the module's stderr.
	if _, err := m.CallRaw(ctx, "bw_retry", []byte{0xff}); err == nil || !strings.Contains(err.Error(), "bw_retry: abi: decoding Input") {
		t.Errorf("bad input: err = %v, want a trap naming the decoding error", err)
	}
}
