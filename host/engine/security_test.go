package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/internal/meter"
)

// A small binary-module builder for the modules WAT cannot express
// (invalid or malformed ones) or that are too big to commit.

func uleb(v uint32) []byte { return binary.AppendUvarint(nil, uint64(v)) }

func vecOf(items ...[]byte) []byte {
	out := uleb(uint32(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func section(id byte, body []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(body)))...), body...)
}

func binaryModule(sections ...[]byte) []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	for _, s := range sections {
		out = append(out, s...)
	}
	return out
}

func codeBody(code ...byte) []byte {
	b := append([]byte{0}, code...)
	return append(uleb(uint32(len(b))), b...)
}

func str(s string) []byte { return append(uleb(uint32(len(s))), s...) }

// abiModule is an ABI v1 module (memory, bw_abi_version, bw_alloc,
// bw_retry) with retry as bw_retry's body, extra types after the three it
// needs, and a table when table is set.
func abiModule(retry []byte, table bool, codeSection func([]byte) []byte) []byte {
	types := vecOf(
		[]byte{0x60, 0, 1, 0x7F},             // 0: () -> i32
		[]byte{0x60, 1, 0x7F, 1, 0x7F},       // 1: (i32) -> i32
		[]byte{0x60, 2, 0x7F, 0x7F, 1, 0x7E}, // 2: (i32, i32) -> i64
	)
	secs := [][]byte{section(1, types), section(3, vecOf(uleb(0), uleb(1), uleb(2)))}
	if table {
		secs = append(secs, section(4, vecOf([]byte{0x70, 0x00, 0x01})))
	}
	secs = append(secs,
		section(5, vecOf([]byte{0x00, 0x01})),
		section(7, vecOf(
			append(str("memory"), 0x02, 0x00),
			append(str("bw_abi_version"), 0x00, 0x00),
			append(str("bw_alloc"), 0x00, 0x01),
			append(str("bw_retry"), 0x00, 0x02))))
	code := vecOf(codeBody(0x41, 0x01, 0x0B), codeBody(0x41, 0x80, 0x08, 0x0B), codeBody(retry...))
	if codeSection != nil {
		code = codeSection(code)
	}
	return binaryModule(append(secs, section(10, code))...)
}

// escapeModules are the attacks of the issue: invalid or malformed modules
// the old rewrite turned into valid ones.
func escapeModules() []struct {
	name, rule string
	wasm       []byte
} {
	spin := []byte{0x03, 0x40, 0x0C, 0x00, 0x0B, 0x00, 0x0B} // loop br 0 end; unreachable; end
	setFuel := append([]byte{0x42, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x24, 0x00}, spin...)
	valid := []byte{0x42, 0x85, 0x80, 0x80, 0x80, 0x80, 0x02, 0x0B} // i64.const 0x1000000005; end
	return []struct {
		name, rule string
		wasm       []byte
	}{
		// global.set 0 (i64.const max) in a module with no globals: once
		// rewritten, global 0 was the fuel counter and the loop spun forever.
		{"dangling global", "invalid", abiModule(setFuel, false, nil)},
		// call_indirect (type 3) with three types: type 3 was refill's.
		{"dangling call_indirect type", "invalid", abiModule(append([]byte{0x41, 0x00, 0x11, 0x03, 0x00}, spin...), true, nil)},
		// The code section claims 4 bodies and holds 3.
		{"count mismatch", "malformed", abiModule(valid, false, func(b []byte) []byte { b[0] = 4; return b })},
		// The code section's count as an over-long LEB128 (6 bytes).
		{"over-long LEB128", "malformed", abiModule(valid, false, func(b []byte) []byte {
			return append([]byte{0x83, 0x80, 0x80, 0x80, 0x80, 0x00}, b[1:]...)
		})},
		// Two stray bytes after the code section's last body.
		{"trailing bytes", "malformed", abiModule(valid, false, func(b []byte) []byte { return append(b, 0x0B, 0x0B) })},
	}
}

// TestEscapeModulesRefused: every escape module is refused by Inspect,
// Load and DryRun with the rule naming what is wrong, and nothing spins
// (each check is bounded by a context; refusal takes milliseconds).
func TestEscapeModulesRefused(t *testing.T) {
	e := newEngine(t, Options{})
	for _, tc := range escapeModules() {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			checks := map[string]func() error{
				"Inspect": func() error { _, err := e.Inspect(ctx, tc.wasm); return err },
				"Load": func() error {
					_, err := e.Load(ctx, LoadSpec{Name: "escape", Version: "1", Wasm: tc.wasm, Limits: Limits{WallTime: time.Second}})
					return err
				},
				"DryRun": func() error { _, err := e.DryRun(ctx, tc.wasm, Limits{WallTime: time.Second}); return err },
			}
			for name, check := range checks {
				t0 := time.Now()
				err := check()
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Rule != tc.rule || ve.Detail == "" {
					t.Fatalf("%s: want ValidationError %q, got %v", name, tc.rule, err)
				}
				if d := time.Since(t0); d > 2*time.Second {
					t.Fatalf("%s took %v", name, d)
				}
				t.Logf("%s: %v", name, err)
			}
		})
	}
}

// TestStartSections: a module with a start section loads and its start
// function ran (bw_retry returns what it wrote); one whose start function
// loops forever is stopped by the start-up limits with a clear error.
func TestStartSections(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	m, err := e.Load(ctx, LoadSpec{Name: "start_ok", Version: "1", Wasm: fixture(t, "start_ok")})
	if err != nil {
		t.Fatalf("a module with a start section: %v", err)
	}
	defer m.Close(ctx)
	for range 2 { // the pool's instances all ran it
		d, err := Decide[abi.RetryDecision](ctx, m, KindRetry, SampleInput(), Limits{})
		if err != nil || !d.Retry || d.DelayMs != 250 {
			t.Fatalf("decision written by the start function: %+v %v", d, err)
		}
	}
	if _, err := e.DryRun(ctx, fixture(t, "start_ok"), Limits{}); err != nil {
		t.Fatalf("dry run: %v", err)
	}

	t0 := time.Now()
	_, err = e.Load(ctx, LoadSpec{Name: "start_loop", Version: "1", Wasm: fixture(t, "start_loop")})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Rule != "instantiate" || !strings.Contains(ve.Detail, "start function ran over the start-up limits") {
		t.Fatalf("looping start function: want ValidationError instantiate, got %v", err)
	}
	if !errors.Is(err, meter.ErrFuelExhausted) && !errors.Is(err, meter.ErrDeadlineExceeded) {
		t.Fatalf("looping start function not stopped by fuel or deadline: %v", err)
	}
	if d, lim := time.Since(t0), initLimits(DefaultLimits()).WallTime; d > lim+5*time.Second {
		t.Fatalf("stopped after %v (start-up wall-time limit %v)", d, lim)
	}
	t.Logf("start_loop refused after %v: %v", time.Since(t0).Round(time.Millisecond), err)
}

// TestSleepsCountAgainstWallTime: a Go guest's time.Sleep (WASI
// poll_oneoff) is cut at the call's deadline and reported as a deadline
// breach; so is a raw module sleeping in a loop; and a module sleeping 2 s
// on the sample input fails its dry run.
func TestSleepsCountAgainstWallTime(t *testing.T) {
	e := newEngine(t, Options{QuarantineAfter: 1000})
	ctx := context.Background()
	tests := []struct {
		fixture string
		config  string
	}{
		{"go_hostile", `{"sleep_ms":200}`},
		{"sleep_loop", ""},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			m, err := e.Load(ctx, LoadSpec{Name: tc.fixture, Version: "1", Wasm: fixture(t, tc.fixture), Limits: Limits{WallTime: 50 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(ctx)
			for i := range 2 {
				in := SampleInput()
				in.Config = []byte(tc.config)
				t0 := time.Now()
				_, err = Decide[abi.RetryDecision](ctx, m, KindRetry, in, Limits{})
				took := time.Since(t0)
				var be *BreachError
				if !errors.As(err, &be) || be.Kind != BreachDeadline {
					t.Fatalf("call %d: want breach deadline, got %v", i+1, err)
				}
				if took > time.Second {
					t.Fatalf("call %d: a 50ms limit returned after %v", i+1, took)
				}
				t.Logf("call %d: %v after %v", i+1, err, took.Round(time.Millisecond))
			}
		})
	}
	t.Run("dry run", func(t *testing.T) {
		_, err := e.DryRun(ctx, fixture(t, "go_hostile"), Limits{})
		var ve *ValidationError
		var be *BreachError
		if !errors.As(err, &ve) || ve.Rule != "dry_run" || !errors.As(err, &be) || be.Kind != BreachDeadline {
			t.Fatalf("a 2 s sleep: want dry_run rejection for a deadline breach, got %v", err)
		}
	})
}

// TestMemoryBreachOfGoGuest: a Go guest allocating 100 MB under the
// default 512 pages (32 MiB) is a memory breach (its memory.grow was
// refused), not fuel or trap — also when the Go runtime's out-of-memory
// handling (printing a stack trace) then runs out of fuel, which the old
// heuristic classified as a fuel breach.
func TestMemoryBreachOfGoGuest(t *testing.T) {
	var fuel []int64
	e := newEngine(t, Options{QuarantineAfter: 1000, OnCall: func(r CallReport) { fuel = append(fuel, r.Fuel) }})
	ctx := context.Background()
	m, err := e.Load(ctx, LoadSpec{Name: "go_hostile", Version: "1", Wasm: fixture(t, "go_hostile"), Limits: Limits{MemoryPages: DefaultLimits().MemoryPages}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	alloc100 := func(lim Limits) error {
		in := SampleInput()
		in.Config = []byte(`{"alloc_mb":100}`)
		_, err := Decide[abi.RetryDecision](ctx, m, KindRetry, in, lim)
		return err
	}
	var be *BreachError
	if err := alloc100(Limits{}); !errors.As(err, &be) || be.Kind != BreachMemory {
		t.Fatalf("want breach memory, got %v", err)
	}
	// The Go runtime's out-of-memory handling ends in a trap after about
	// 17M fuel; the grow was refused after 3–6M (measured). Half the way
	// there the guest is past the refusal: the old classification said
	// "fuel" for this call.
	toTrap := fuel[len(fuel)-1]
	err = alloc100(Limits{Fuel: toTrap / 2})
	if !errors.As(err, &be) || be.Kind != BreachMemory || !errors.Is(err, meter.ErrFuelExhausted) {
		t.Fatalf("fuel spent after the refused grow: want breach memory (fuel exhausted), got %v", err)
	}
	t.Logf("trap after %d fuel; with %d: %v", toTrap, toTrap/2, err)
	// A small allocation on a fresh instance is fine, and a plain fuel
	// breach is still one.
	in := SampleInput()
	in.Config = []byte(`{"alloc_mb":1}`)
	if d, err := Decide[abi.RetryDecision](ctx, m, KindRetry, in, Limits{}); err != nil || !d.Retry {
		t.Fatalf("1 MB: %+v %v", d, err)
	}
	if _, err := Decide[abi.RetryDecision](ctx, m, KindRetry, in, Limits{Fuel: 1000}); !errors.As(err, &be) || be.Kind != BreachFuel {
		t.Fatalf("small budget: want breach fuel, got %v", err)
	}
}

// manyFunctions is a valid module of n empty functions (4 bytes each).
func manyFunctions(n int) []byte {
	types := make([][]byte, n)
	bodies := make([][]byte, n)
	for i := range n {
		types[i], bodies[i] = uleb(0), codeBody(0x0B)
	}
	return binaryModule(section(1, vecOf([]byte{0x60, 0, 0})), section(3, vecOf(types...)), section(10, vecOf(bodies...)))
}

// TestSizeCaps: modules over the caps are refused quickly with the cap and
// the value in the error; the Go guests pass the defaults (the other tests
// load them).
func TestSizeCaps(t *testing.T) {
	ctx := context.Background()
	goGuest := module(t, "retry-status-aware")
	tests := []struct {
		name   string
		o      Options
		wasm   []byte
		rule   string
		detail []string
	}{
		{"1M functions", Options{}, manyFunctions(1_000_000), "too_many_functions", []string{"1000000 functions", fmt.Sprint(DefaultMaxFunctions)}},
		{"functions cap", Options{MaxFunctions: 1000}, goGuest, "too_many_functions", []string{"2174 functions", "1000"}},
		{"bytes cap", Options{MaxModuleBytes: 1 << 20}, goGuest, "module_too_large", []string{fmt.Sprint(len(goGuest)), fmt.Sprint(1 << 20)}},
		{"check time cap", Options{MaxCheckTime: time.Millisecond}, goGuest, "check_timeout", []string{"1ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, tc.o)
			t0 := time.Now()
			_, err := e.Inspect(ctx, tc.wasm)
			took := time.Since(t0)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Rule != tc.rule {
				t.Fatalf("want ValidationError %q, got %v", tc.rule, err)
			}
			for _, d := range tc.detail {
				if !strings.Contains(ve.Detail, d) {
					t.Errorf("detail %q does not name %q", ve.Detail, d)
				}
			}
			if took > 2*time.Second {
				t.Fatalf("refused after %v", took)
			}
			t.Logf("%d bytes refused in %v: %v", len(tc.wasm), took.Round(time.Millisecond), err)
		})
	}
}
