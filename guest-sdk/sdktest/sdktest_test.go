package sdktest_test

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/guest-sdk/sdktest"
)

// retryConstant is the minimal WAT module of docs/abi.md: it always answers
// RetryDecision{retry: true, delay_ms: 100, reason: "constant"}.
const retryConstant = "../../modules/retry-constant.wasm"

func load(t *testing.T, path string) *sdktest.Module {
	t.Helper()
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the module (build it with policies/build.sh): %v", err)
	}
	ctx := context.Background()
	rt, err := sdktest.NewRuntime(ctx, sdktest.Options{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	m, err := rt.Load(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRetryConstant(t *testing.T) {
	ctx := context.Background()
	m := load(t, retryConstant)
	if v, err := m.ABIVersion(ctx); err != nil || v != abi.Version {
		t.Fatalf("ABIVersion = %d, %v; want %d", v, err, abi.Version)
	}
	if got, want := m.Kinds(), []string{"retry"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Kinds = %v, want %v", got, want)
	}
	if got, want := m.Exports(), []string{"bw_abi_version", "bw_alloc", "bw_retry"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Exports = %v, want %v", got, want)
	}
	want := abi.RetryDecision{Retry: true, DelayMs: 100, Reason: "constant"}
	tests := []struct {
		name string
		in   abi.Input
	}{
		{"small", abi.Input{Route: "r", Attempt: 1}},
		// Larger than the module's first page: bw_alloc must grow the memory.
		{"large payload", abi.Input{Route: "r", Payload: bytes.Repeat([]byte("x"), 200_000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Retry(ctx, &tt.in)
			if err != nil || got != want {
				t.Errorf("Retry = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

func TestCallErrors(t *testing.T) {
	ctx := context.Background()
	m := load(t, retryConstant)
	if _, err := m.Fallback(ctx, &abi.Input{Route: "r"}); err == nil || !strings.Contains(err.Error(), "does not export bw_fallback") {
		t.Errorf("Fallback on a retry-only module: err = %v", err)
	}
	if _, err := m.Classify(ctx, &abi.Input{Route: "r", ResponseStatus: 200}); err == nil || !strings.Contains(err.Error(), "does not export bw_classify") {
		t.Errorf("Classify on a retry-only module: err = %v", err)
	}
	// CallRaw hands the module any bytes; this one ignores its input.
	if out, err := m.CallRaw(ctx, "bw_retry", nil); err != nil || len(out) != 14 {
		t.Errorf("CallRaw with an empty input: %d bytes, %v", len(out), err)
	}
}

func TestOutputLimit(t *testing.T) {
	wasm, err := os.ReadFile(retryConstant)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt, err := sdktest.NewRuntime(ctx, sdktest.Options{Interpreter: true, MaxOutput: 13})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	m, err := rt.Load(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Retry(ctx, &abi.Input{Route: "r"}); err == nil || !strings.Contains(err.Error(), "exceeds the limit of 13") {
		t.Errorf("14-byte output with a 13-byte limit: err = %v", err)
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	ctx := context.Background()
	rt, err := sdktest.NewRuntime(ctx, sdktest.Options{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	if _, err := rt.Load(ctx, []byte("not wasm")); err == nil || !strings.Contains(err.Error(), "compiling module") {
		t.Errorf("Load(garbage): err = %v", err)
	}
}
