package engine

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/testkit"
)

// The errors a module author sees: what broke, where, and what to do.

// TestBreachNamesPanicAndFunction: a Go guest's panic message is in the
// breach error and the logs carry route and message id; the function
// that panicked is named from the name section (kept through metering).
func TestBreachNamesPanicAndFunction(t *testing.T) {
	logs := &testkit.LogBuffer{}
	e := newEngine(t, Options{QuarantineAfter: 1000, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	ctx := context.Background()
	m, err := e.Load(ctx, LoadSpec{Name: "panicky", Version: "v1", Wasm: testkit.BuildGuest(t, "./testdata/panicky")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	in := SampleInput()
	in.Route, in.MessageID = "orders", "order-17"
	var d abi.RetryDecision
	st, err := m.Run(ctx, KindRetry, in, Limits{}, &d)
	var be *BreachError
	if !errors.As(err, &be) || be.Kind != BreachTrap {
		t.Fatalf("want a trap breach, got %v", err)
	}
	const msg = `inventory policy: config field "sku_field" is required`
	if be.Panic != msg || !strings.Contains(err.Error(), "the guest panicked: "+msg) {
		t.Errorf("panic message: got %q in %q", be.Panic, err)
	}
	if be.Function != "main.decide" || !strings.Contains(err.Error(), "trap breach in main.decide") {
		t.Errorf("function: got %q in %q", be.Function, err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("the breach error spans lines (a stack trace): %q", err)
	}
	if st.Fuel <= 0 || len(st.Output) == 0 || !strings.HasPrefix(st.Output[0], "panic: ") {
		t.Errorf("stats of the failed call: %+v", st)
	}
	if logs.Line(`"msg":"module output"`, `"route":"orders"`, `"message_id":"order-17"`, "sku_field") == "" {
		t.Errorf("the module's output is not logged with route and message id:\n%s", logs)
	}

	// The same module with its config decides, and Run measures it.
	in.Config = []byte(`{"sku_field":"sku"}`)
	st, err = m.Run(ctx, KindRetry, in, Limits{}, &d)
	if err != nil || !d.Retry || d.Reason != "configured" {
		t.Fatalf("with config: %+v %v", d, err)
	}
	if st.Fuel <= 0 || st.WallTime <= 0 || st.MemoryPages == 0 || len(st.Output) != 0 {
		t.Errorf("stats: %+v", st)
	}
}

// TestCommandModuleRefused: a Go guest built without -buildmode=c-shared
// (a WASI command) is refused with the build line that fixes it.
func TestCommandModuleRefused(t *testing.T) {
	e := newEngine(t, Options{})
	p := testkit.GoBuild(t, "./testdata/panicky", []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS="}, "-trimpath")
	wasm, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Load(context.Background(), LoadSpec{Name: "cmd", Version: "v1", Wasm: wasm})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Rule != "not_reactor" || !strings.Contains(err.Error(), "-buildmode=c-shared") {
		t.Fatalf("want not_reactor naming -buildmode=c-shared, got %v", err)
	}
}

// TestDeterministicFuel: with LoadSpec.Deterministic the same input costs
// the same fuel on every call and in every load, for each policy module.
func TestDeterministicFuel(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	for _, name := range []string{"retry-exponential", "retry-status-aware", "fallback-cache-then-stub", "classify-json-error"} {
		t.Run(name, func(t *testing.T) {
			fuel := map[int64]int{}
			for range 2 {
				m, err := e.Load(ctx, LoadSpec{Name: name, Version: "v1", Wasm: testkit.Module(t, name), Deterministic: true})
				if err != nil {
					t.Fatal(err)
				}
				k := m.Info().Kinds[0]
				for range 5 {
					st, err := m.Run(ctx, k, SampleInputFor(k), Limits{}, NewOutput(k))
					if err != nil {
						t.Fatal(err)
					}
					fuel[st.Fuel]++
				}
				m.Close(ctx)
			}
			if len(fuel) != 1 {
				t.Fatalf("one input, 10 calls in 2 loads: fuel %v", fuel)
			}
		})
	}
}
