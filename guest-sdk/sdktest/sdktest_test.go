package sdktest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/guest-sdk/sdktest"
)

// retryConstant is the minimal WAT module of docs/abi.md: it always answers
// RetryDecision{retry: true, delay_ms: 100, reason: "constant"}.
const retryConstant = "../../modules/retry-constant.wasm"

// fakeEnv makes the test binary act as a broken runtime (see TestMain).
const fakeEnv = "SDKTEST_FAKE_RUNTIME"

func TestMain(m *testing.M) {
	switch os.Getenv(fakeEnv) {
	case "":
		os.Exit(m.Run())
	case "die": // exits at once, with a message
		fmt.Fprintln(os.Stderr, "fake runtime: cannot load the module")
		os.Exit(3)
	case "hang": // reads its input and never answers
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
		}
		time.Sleep(time.Hour)
	case "echo": // answers every input with its route as the reason
		dec := json.NewDecoder(os.Stdin)
		for {
			var in map[string]any
			if err := dec.Decode(&in); err != nil {
				os.Exit(0)
			}
			line, _ := json.Marshal(map[string]any{"kind": "retry",
				"decision": map[string]any{"retry": true, "delay_ms": 7, "reason": in["route"]},
				"fuel":     42, "wall_time_ns": 1000, "memory_pages": 2, "logs": []string{"INFO hello"}})
			fmt.Printf("%s\n", line)
		}
	case "trap":
		dec := json.NewDecoder(os.Stdin)
		for {
			var in map[string]any
			if err := dec.Decode(&in); err != nil {
				os.Exit(0)
			}
			fmt.Println(`{"kind":"retry","error":"module m@1 bw_retry: trap breach: boom","breach":"trap","function":"main.decide","fuel":9}`)
		}
	}
	os.Exit(2)
}

// fake returns Options running the test binary as a fake runtime.
func fake(t *testing.T, mode string) sdktest.Options {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeEnv, mode)
	return sdktest.Options{Runtime: exe}
}

func load(t *testing.T, path string, opts sdktest.Options) *sdktest.Module {
	t.Helper()
	m, err := sdktest.Load(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestRetryConstant runs the WAT module on the real engine (the runtime's
// `module run`).
func TestRetryConstant(t *testing.T) {
	ctx := context.Background()
	m := load(t, retryConstant, sdktest.Options{})
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
			got, st, err := m.Retry(ctx, &tt.in)
			if err != nil || got != want {
				t.Fatalf("Retry = %+v, %v; want %+v", got, err, want)
			}
			if st.Fuel <= 0 || st.MemoryPages == 0 {
				t.Errorf("stats %+v: want the fuel charged and the memory size", st)
			}
		})
	}
}

func TestFuelBreach(t *testing.T) {
	ctx := context.Background()
	m := load(t, retryConstant, sdktest.Options{})
	_, st, err := m.Retry(ctx, &abi.Input{Route: "r", Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	// One unit of fuel less than the call needs.
	short := load(t, retryConstant, sdktest.Options{Fuel: st.Fuel - 1})
	_, _, err = short.Retry(ctx, &abi.Input{Route: "r", Attempt: 1})
	var be *sdktest.BreachError
	if !errors.As(err, &be) || be.Kind != sdktest.BreachFuel {
		t.Fatalf("with %d fuel for a call of %d: err = %v, want a fuel breach", st.Fuel-1, st.Fuel, err)
	}
	// And exactly enough is enough.
	exact := load(t, retryConstant, sdktest.Options{Fuel: st.Fuel})
	if _, st2, err := exact.Retry(ctx, &abi.Input{Route: "r", Attempt: 1}); err != nil || st2.Fuel != st.Fuel {
		t.Errorf("with exactly %d fuel: %+v, %v", st.Fuel, st2, err)
	}
}

func TestKindNotExported(t *testing.T) {
	ctx := context.Background()
	m := load(t, retryConstant, fake(t, "die"))
	for kind, call := range map[string]func() error{
		"fallback": func() error { _, _, err := m.Fallback(ctx, &abi.Input{Route: "r"}); return err },
		"classify": func() error { _, _, err := m.Classify(ctx, &abi.Input{Route: "r", ResponseStatus: 200}); return err },
	} {
		var be *sdktest.BreachError
		if err := call(); !errors.As(err, &be) || be.Kind != sdktest.BreachABI || !strings.Contains(err.Error(), "does not export bw_"+kind) {
			t.Errorf("%s on a retry-only module: err = %v", kind, err)
		}
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "garbage.wasm")
	if err := os.WriteFile(path, []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sdktest.Load(context.Background(), path, fake(t, "die")); err == nil || !strings.Contains(err.Error(), "not a WebAssembly module") {
		t.Errorf("Load(garbage): err = %v", err)
	}
	if _, err := sdktest.Load(context.Background(), filepath.Join(t.TempDir(), "missing.wasm"), fake(t, "die")); err == nil {
		t.Error("Load(missing file): no error")
	}
}

// The protocol, against fake runtimes.

func TestProtocol(t *testing.T) {
	ctx := context.Background()
	m := load(t, retryConstant, fake(t, "echo"))
	for i := range 3 { // one process serves many calls
		route := fmt.Sprintf("route-%d", i)
		d, st, err := m.Retry(ctx, &abi.Input{Route: route, Attempt: 1})
		if err != nil || d != (abi.RetryDecision{Retry: true, DelayMs: 7, Reason: route}) {
			t.Fatalf("call %d: %+v, %v", i, d, err)
		}
		if want := (sdktest.Stats{Fuel: 42, WallTime: time.Microsecond, MemoryPages: 2, Logs: []string{"INFO hello"}}); !reflect.DeepEqual(st, want) {
			t.Errorf("stats %+v, want %+v", st, want)
		}
	}
}

func TestBreachReported(t *testing.T) {
	m := load(t, retryConstant, fake(t, "trap"))
	_, st, err := m.Retry(context.Background(), &abi.Input{Route: "r"})
	var be *sdktest.BreachError
	if !errors.As(err, &be) || be.Kind != sdktest.BreachTrap || be.Function != "main.decide" || !strings.Contains(be.Message, "boom") || st.Fuel != 9 {
		t.Errorf("err = %#v, stats %+v", err, st)
	}
}

func TestRuntimeDies(t *testing.T) {
	m := load(t, retryConstant, fake(t, "die"))
	start := time.Now()
	_, _, err := m.Retry(context.Background(), &abi.Input{Route: "r"})
	if err == nil || !strings.Contains(err.Error(), "cannot load the module") {
		t.Errorf("err = %v, want the runtime's standard error", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

func TestCallBoundedByContext(t *testing.T) {
	m := load(t, retryConstant, fake(t, "hang"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := m.Retry(ctx, &abi.Input{Route: "r"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, _, err := m.Retry(context.Background(), &abi.Input{Route: "r"}); err == nil {
		t.Error("call after Close: no error")
	}
}

func TestRuntimeNotFound(t *testing.T) {
	_, err := sdktest.Load(context.Background(), retryConstant, sdktest.Options{Runtime: filepath.Join(t.TempDir(), "no-such-runtime")})
	if err == nil {
		t.Fatal("no error")
	}
}

// TestHostileModules runs the hostile fixtures of modules/fixtures on the
// real engine: each call is a breach of the expected kind, reported as a
// *BreachError, and the process keeps serving calls after it.
func TestHostileModules(t *testing.T) {
	tests := []struct {
		fixture string
		opts    sdktest.Options
		kinds   []sdktest.BreachKind
	}{
		{"trap", sdktest.Options{}, []sdktest.BreachKind{sdktest.BreachTrap}},
		// The fuel or the wall time runs out first, depending on the machine.
		{"infinite_loop", sdktest.Options{WallTime: 200 * time.Millisecond}, []sdktest.BreachKind{sdktest.BreachFuel, sdktest.BreachDeadline}},
		{"memory_bomb", sdktest.Options{MemoryPages: 64}, []sdktest.BreachKind{sdktest.BreachMemory}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			m := load(t, filepath.Join("../../modules/fixtures", tt.fixture+".wasm"), tt.opts)
			for i := range 2 {
				_, _, err := m.Retry(context.Background(), &abi.Input{Route: "r", Attempt: 1})
				var be *sdktest.BreachError
				if !errors.As(err, &be) || !slices.Contains(tt.kinds, be.Kind) {
					t.Fatalf("call %d: err = %v, want a breach of kind %v", i, err, tt.kinds)
				}
			}
		})
	}
}
