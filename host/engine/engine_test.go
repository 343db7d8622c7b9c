package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "modules", "fixtures", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func module(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "modules", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sharedCache lets every test's engine reuse compiled modules (a Go guest
// takes about a second to compile).
var sharedCache = filepath.Join(os.TempDir(), "breakwater-engine-test-cache")

func newEngine(t testing.TB, o Options) *Engine {
	t.Helper()
	o.CacheDir = sharedCache
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func TestRejectedModules(t *testing.T) {
	e := newEngine(t, Options{})
	tests := []struct {
		fixture, rule string
	}{
		{"not_wasm", "not_wasm"},
		{"forbidden_import", "forbidden_import"},
		{"missing_host_fn", "forbidden_import"},
		{"wrong_abi_version", "abi_version"},
		{"no_kinds", "no_kinds"},
		{"missing_alloc", "missing_export"},
		{"bad_signature", "bad_signature"},
		{"forbidden_import_env", "forbidden_import"},
		{"start_loop", "instantiate"},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			_, err := e.Load(context.Background(), LoadSpec{Name: tc.fixture, Version: "1", Wasm: fixture(t, tc.fixture)})
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Rule != tc.rule || ve.Detail == "" {
				t.Fatalf("want ValidationError %q, got %v", tc.rule, err)
			}
		})
	}
}

func TestBreaches(t *testing.T) {
	e := newEngine(t, Options{QuarantineAfter: 1000})
	good, err := e.Load(context.Background(), LoadSpec{Name: "constant", Version: "1", Wasm: module(t, "retry-constant")})
	if err != nil {
		t.Fatal(err)
	}
	lim := Limits{Fuel: 50_000_000, WallTime: 100 * time.Millisecond, MemoryPages: 64, OutputBytes: 64 << 10}
	tests := []struct {
		fixture string
		lim     Limits
		want    BreachKind
	}{
		{"infinite_loop", Limits{Fuel: 1 << 50, WallTime: 50 * time.Millisecond, MemoryPages: 64}, BreachDeadline},
		{"infinite_loop", Limits{Fuel: 10_000, WallTime: time.Minute, MemoryPages: 64}, BreachFuel},
		{"deep_recursion", Limits{Fuel: 1 << 40, WallTime: 5 * time.Second, MemoryPages: 64}, BreachTrap},
		{"deep_recursion", Limits{Fuel: 10_000, WallTime: time.Minute, MemoryPages: 64}, BreachFuel},
		{"memory_bomb", lim, BreachMemory},
		{"huge_output", lim, BreachOutputTooLarge},
		{"trap", lim, BreachTrap},
		{"bad_output_bounds", lim, BreachBadOutput},
		{"bad_output_encoding", lim, BreachBadOutput},
	}
	for _, tc := range tests {
		t.Run(tc.fixture+"/"+string(tc.want), func(t *testing.T) {
			m, err := e.Load(context.Background(), LoadSpec{Name: tc.fixture, Version: "1", Wasm: fixture(t, tc.fixture), Limits: tc.lim})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			defer m.Close(context.Background())
			for i := range 2 { // the breached instance is replaced: a second call breaches the same way
				_, err = Decide[abi.RetryDecision](context.Background(), m, KindRetry, SampleInput(), Limits{})
				var be *BreachError
				if !errors.As(err, &be) || be.Kind != tc.want {
					t.Fatalf("call %d: want breach %q, got %v", i+1, tc.want, err)
				}
			}
			// The host is unharmed: another module still answers.
			d, err := Decide[abi.RetryDecision](context.Background(), good, KindRetry, SampleInput(), Limits{})
			if err != nil || !d.Retry {
				t.Fatalf("good module after the breach: %+v %v", d, err)
			}
		})
	}
}

func TestGoGuestPolicies(t *testing.T) {
	e := newEngine(t, Options{PoolSize: 2})
	ctx := context.Background()
	m, err := e.Load(ctx, LoadSpec{Name: "status-aware", Version: "1", Wasm: module(t, "retry-status-aware")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	tests := []struct {
		kind   abi.ErrorKind
		status int32
		want   bool
	}{
		{abi.ErrorStatus, 503, true},
		{abi.ErrorStatus, 404, false},
		{abi.ErrorTimeout, 0, true},
		{abi.ErrorBadInput, 0, false},
	}
	for _, tc := range tests {
		in := SampleInput()
		in.Error = abi.AttemptError{Attempt: 1, Kind: tc.kind, Status: tc.status, Message: "x"}
		d, err := Decide[abi.RetryDecision](ctx, m, KindRetry, in, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Retry != tc.want {
			t.Errorf("%s %d: retry %v, want %v (%s)", tc.kind, tc.status, d.Retry, tc.want, d.Reason)
		}
	}
	stub, err := e.Load(ctx, LoadSpec{Name: "stub-template", Version: "1", Wasm: module(t, "stub-template")})
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close(ctx)
	in := SampleInput()
	in.Config = []byte(`{"template":{"status":"temporarily unavailable","price":0}}`)
	s, err := Decide[abi.Stub](ctx, stub, KindStub, in, Limits{})
	if err != nil || len(s.Payload) == 0 {
		t.Fatalf("stub: %+v %v", s, err)
	}
}

func TestFuelDeterministic(t *testing.T) {
	var mu sync.Mutex
	var fuel []int64
	e := newEngine(t, Options{OnCall: func(r CallReport) {
		mu.Lock()
		fuel = append(fuel, r.Fuel)
		mu.Unlock()
	}})
	m, err := e.Load(context.Background(), LoadSpec{Name: "status-aware", Version: "1", Wasm: module(t, "retry-status-aware")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	for range 5 {
		if _, err := Decide[abi.RetryDecision](context.Background(), m, KindRetry, SampleInput(), Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(fuel); i++ {
		if fuel[i] != fuel[0] || fuel[i] <= 0 {
			t.Fatalf("fuel per identical call: %v", fuel)
		}
	}
}

func TestQuarantine(t *testing.T) {
	e := newEngine(t, Options{QuarantineAfter: 3, QuarantineFor: 50 * time.Millisecond})
	m, err := e.Load(context.Background(), LoadSpec{Name: "trap", Version: "1", Wasm: fixture(t, "trap")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	for range 3 {
		_, _ = Decide[abi.RetryDecision](context.Background(), m, KindRetry, SampleInput(), Limits{})
	}
	if _, err := Decide[abi.RetryDecision](context.Background(), m, KindRetry, SampleInput(), Limits{}); !errors.Is(err, ErrQuarantined) {
		t.Fatalf("after 3 breaches: %v, want ErrQuarantined", err)
	}
	// After the period a probe goes through (and breaches again).
	var be *BreachError
	for i := 0; i < 200; i++ {
		_, err = Decide[abi.RetryDecision](context.Background(), m, KindRetry, SampleInput(), Limits{})
		if errors.As(err, &be) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if be == nil {
		t.Fatalf("no probe after the quarantine: %v", err)
	}
	if !m.Quarantined() {
		t.Fatal("a failed probe did not quarantine the module again")
	}
}

func TestPoolBoundUnderConcurrency(t *testing.T) {
	e := newEngine(t, Options{PoolSize: 2})
	m, err := e.Load(context.Background(), LoadSpec{Name: "constant", Version: "1", Wasm: module(t, "retry-constant")})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := Decide[abi.RetryDecision](context.Background(), m, KindRetry, SampleInput(), Limits{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(m.pool); n > 2 {
		t.Fatalf("%d instances pooled, bound 2", n)
	}
	m.Close(context.Background())
	if _, err := Decide[abi.RetryDecision](context.Background(), m, KindRetry, SampleInput(), Limits{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestDryRun(t *testing.T) {
	e := newEngine(t, Options{})
	info, err := e.DryRun(context.Background(), module(t, "retry-exponential"), Limits{})
	if err != nil || len(info.Kinds) != 1 || info.Kinds[0] != KindRetry || info.ABIVersion != 1 {
		t.Fatalf("good module: %+v %v", info, err)
	}
	_, err = e.DryRun(context.Background(), fixture(t, "trap"), Limits{})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Rule != "dry_run" {
		t.Fatalf("trapping module: want dry_run rejection, got %v", err)
	}
}
