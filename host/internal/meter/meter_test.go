package meter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

func load(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func instantiate(t testing.TB, wasm []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	if err := Register(ctx, rt); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

func metered(t testing.TB, name string, o Options) api.Module {
	t.Helper()
	out, err := Instrument(load(t, name), o)
	if err != nil {
		t.Fatal(err)
	}
	return instantiate(t, out)
}

// run calls fn under a budget and returns results, fuel used and error.
func run(t testing.TB, mod api.Module, fn string, budget int64, deadline time.Time, args ...uint64) ([]uint64, int64, error) {
	t.Helper()
	ctx, c, err := Begin(context.Background(), mod, budget, deadline)
	if err != nil {
		t.Fatal(err)
	}
	res, callErr := mod.ExportedFunction(fn).Call(ctx, args...)
	used, err := c.End(callErr)
	return res, used, err
}

func TestSameResultsAsUninstrumented(t *testing.T) {
	plain := instantiate(t, load(t, "arith.wasm"))
	mod := metered(t, "arith.wasm", Options{})
	tests := []struct {
		fn   string
		args []uint64
	}{
		{"sum", []uint64{0}}, {"sum", []uint64{1000}},
		{"fib", []uint64{15}},
		{"classify", []uint64{0}}, {"classify", []uint64{1}}, {"classify", []uint64{2}}, {"classify", []uint64{99}},
		{"memory_roundtrip", []uint64{41}},
		{"busy", []uint64{1000}},
	}
	for _, tc := range tests {
		want, err := plain.ExportedFunction(tc.fn).Call(context.Background(), tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		got, used, err := run(t, mod, tc.fn, 1<<40, time.Time{}, tc.args...)
		if err != nil {
			t.Fatalf("%s%v: %v", tc.fn, tc.args, err)
		}
		if len(got) != len(want) || (len(got) > 0 && got[0] != want[0]) {
			t.Errorf("%s%v = %v, want %v", tc.fn, tc.args, got, want)
		}
		if used <= 0 {
			t.Errorf("%s%v used %d fuel", tc.fn, tc.args, used)
		}
	}
}

func TestFuelDeterministicAndProportional(t *testing.T) {
	mod := metered(t, "arith.wasm", Options{})
	fuelOf := func(n uint64) int64 {
		_, used, err := run(t, mod, "sum", 1<<40, time.Time{}, n)
		if err != nil {
			t.Fatal(err)
		}
		return used
	}
	a, b := fuelOf(1000), fuelOf(1000)
	if a != b {
		t.Fatalf("same input, different fuel: %d vs %d", a, b)
	}
	// A second instance of the same module agrees too.
	if c := func() int64 {
		_, used, _ := run(t, metered(t, "arith.wasm", Options{}), "sum", 1<<40, time.Time{}, 1000)
		return used
	}(); c != a {
		t.Fatalf("another instance used %d, want %d", c, a)
	}
	small, large := fuelOf(10), fuelOf(10_000)
	if !(small < a && a < large) || large < 9*a {
		t.Fatalf("fuel not proportional to work: n=10 %d, n=1000 %d, n=10000 %d", small, a, large)
	}
}

func TestFuelExhaustion(t *testing.T) {
	mod := metered(t, "arith.wasm", Options{})
	_, used, err := run(t, mod, "sum", 1<<40, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, mod, "sum", used-1, time.Time{}, 100)
	if !errors.Is(err, ErrFuelExhausted) {
		t.Fatalf("budget one short: %v, want ErrFuelExhausted", err)
	}
	if _, _, err = run(t, mod, "sum", used, time.Time{}, 100); err != nil {
		t.Fatalf("exact budget: %v", err)
	}
	// Recursion pays at every call.
	if _, _, err = run(t, mod, "fib", 1000, time.Time{}, 25); !errors.Is(err, ErrFuelExhausted) {
		t.Fatalf("deep recursion on a small budget: %v", err)
	}
	// The instance keeps working after a trap.
	if res, _, err := run(t, mod, "classify", 1<<20, time.Time{}, 1); err != nil || res[0] != 200 {
		t.Fatalf("after exhaustion: %v %v", res, err)
	}
}

func TestDeadline(t *testing.T) {
	mod := metered(t, "arith.wasm", Options{})
	_, _, err := run(t, mod, "spin", 1<<62, time.Now().Add(20*time.Millisecond))
	if !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("infinite loop: %v, want ErrDeadlineExceeded", err)
	}
	// A call that finishes in time is unaffected, and the timer is disarmed.
	if _, _, err := run(t, mod, "sum", 1<<40, time.Now().Add(time.Minute), 10); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryClamp(t *testing.T) {
	mod := metered(t, "arith.wasm", Options{MaxMemoryPages: 2})
	res, _, err := run(t, mod, "grow", 1<<20, time.Time{}, 1)
	if err != nil || int32(res[0]) != 1 {
		t.Fatalf("grow to 2 pages: %v %v", res, err)
	}
	res, _, err = run(t, mod, "grow", 1<<20, time.Time{}, 1)
	if err != nil || int32(res[0]) != -1 {
		t.Fatalf("grow beyond the limit returned %d (%v), want -1", int32(res[0]), err)
	}
	if _, err := Instrument(load(t, "arith.wasm"), Options{MaxMemoryPages: 0}); err != nil {
		t.Fatal(err)
	}
}

func TestRejects(t *testing.T) {
	once, err := Instrument(load(t, "arith.wasm"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		wasm []byte
	}{
		{"not wasm", []byte("hello, world")},
		{"truncated", load(t, "arith.wasm")[:40]},
		{"SIMD", load(t, "simd.wasm")},
		{"instrumented twice", once},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Instrument(tc.wasm, Options{})
			var ie *InstrumentError
			if !errors.As(err, &ie) || ie.Reason == "" {
				t.Fatalf("want *InstrumentError, got %v", err)
			}
		})
	}
}

func TestBeginNeedsInstrumentedModule(t *testing.T) {
	if _, _, err := Begin(context.Background(), instantiate(t, load(t, "arith.wasm")), 10, time.Time{}); err == nil {
		t.Fatal("Begin on an uninstrumented module succeeded")
	}
}
