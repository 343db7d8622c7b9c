package meter

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// A tiny binary-module builder: the escape modules are invalid or
// malformed, which WAT cannot express.

func leb(v uint32) []byte { return appendU32(nil, v) }

func vec(items ...[]byte) []byte {
	out := leb(uint32(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func sec(id byte, body []byte) []byte {
	return append(append([]byte{id}, leb(uint32(len(body)))...), body...)
}

func wasmModule(sections ...[]byte) []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	for _, s := range sections {
		out = append(out, s...)
	}
	return out
}

// body is a code entry without locals.
func body(code ...byte) []byte {
	b := append([]byte{0}, code...)
	return append(leb(uint32(len(b))), b...)
}

func name(s string) []byte { return append(leb(uint32(len(s))), s...) }

var (
	typeVoid = []byte{0x60, 0, 0}
	// spinSettingGlobal0 sets global 0 to max int64, then loops forever.
	spinSettingGlobal0 = body(
		0x42, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, // i64.const max
		0x24, 0x00, // global.set 0
		0x03, 0x40, 0x0C, 0x00, 0x0B, // loop br 0 end
		0x0B)
)

// escapeModules are modules that are refused, each with the rule.
func escapeModules() []struct {
	name, rule string
	wasm       []byte
} {
	exportF := sec(secExport, vec(append(name("f"), 0x00, 0x00)))
	return []struct {
		name, rule string
		wasm       []byte
	}{
		// The original attack: no globals, so after the rewrite global 0
		// would be the fuel global.
		{"dangling global.set", RuleInvalid, wasmModule(
			sec(secType, vec(typeVoid)), sec(secFunction, vec(leb(0))), exportF,
			sec(secCode, vec(spinSettingGlobal0)))},
		// call_indirect (type 1) with one type: after the rewrite type 1
		// would be refill's.
		{"dangling call_indirect type", RuleInvalid, wasmModule(
			sec(secType, vec(typeVoid)), sec(secFunction, vec(leb(0))),
			sec(secTable, vec([]byte{0x70, 0x00, 0x01})), exportF,
			sec(secCode, vec(body(0x41, 0x00, 0x11, 0x01, 0x00, 0x0B))))},
		// A function declared with type 1 of one.
		{"dangling function type", RuleInvalid, wasmModule(
			sec(secType, vec(typeVoid)), sec(secFunction, vec(leb(1))), exportF,
			sec(secCode, vec(body(0x0B))))},
		// Exporting global 0 of none: would export the fuel global.
		{"dangling global export", RuleInvalid, wasmModule(
			sec(secType, vec(typeVoid)), sec(secFunction, vec(leb(0))),
			sec(secExport, vec(append(name("g"), 0x03, 0x00))),
			sec(secCode, vec(body(0x0B))))},
		// The export section says 2 entries and holds 1: the rewrite used
		// to append one and "repair" the count.
		{"count mismatch", RuleMalformed, wasmModule(
			sec(secType, vec(typeVoid)), sec(secFunction, vec(leb(0))),
			sec(secExport, append(leb(2), append(name("f"), 0x00, 0x00)...)),
			sec(secCode, vec(body(0x0B))))},
		// The function section count is a 6-byte LEB128 (at most 5 allowed).
		{"over-long LEB128", RuleMalformed, wasmModule(
			sec(secType, vec(typeVoid)), sec(secFunction, []byte{0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00}), exportF,
			sec(secCode, vec(body(0x0B))))},
		// i32.const with unused bits set in the last byte of its LEB128.
		{"LEB128 out of range", RuleMalformed, wasmModule(
			sec(secType, vec(typeVoid)), sec(secFunction, vec(leb(0))), exportF,
			sec(secCode, vec(body(0x41, 0x80, 0x80, 0x80, 0x80, 0x70, 0x1A, 0x0B))))},
		// Bytes after the last entry of the code section.
		{"trailing bytes", RuleMalformed, wasmModule(
			sec(secType, vec(typeVoid)), sec(secFunction, vec(leb(0))), exportF,
			sec(secCode, append(vec(body(0x0B)), 0x00, 0x00)))},
		// A code section with more bodies than declared functions.
		{"function/code count mismatch", RuleMalformed, wasmModule(
			sec(secType, vec(typeVoid)), sec(secFunction, vec(leb(0))), exportF,
			sec(secCode, vec(body(0x0B), body(0x0B))))},
	}
}

// TestEscapeModulesRefused performs the attacks of the issue: each module
// is refused, by the strict rewrite alone (defence in depth) and by
// Instrument, so nothing is left to run.
func TestEscapeModulesRefused(t *testing.T) {
	for _, tc := range escapeModules() {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate(context.Background(), tc.wasm, 0); err == nil {
				t.Fatal("wazero validates the escape module: the fixture is wrong")
			}
			_, err := Instrument(tc.wasm, Options{})
			var ie *InstrumentError
			if !errors.As(err, &ie) || ie.Rule != tc.rule || ie.Reason == "" {
				t.Fatalf("Instrument: want *InstrumentError %q, got %v", tc.rule, err)
			}
			t.Log(err)
			// The rewrite alone (no wazero validation) refuses it too.
			if _, err := rewriteOnly(tc.wasm); !errors.As(err, &ie) {
				t.Fatalf("strict rewrite accepted it: %v", err)
			}
		})
	}
}

// rewriteOnly runs the strict parse and rewrite without Validate.
func rewriteOnly(wasm []byte) ([]byte, error) {
	sections, err := parseSections(wasm)
	if err != nil {
		return nil, err
	}
	var n counts
	for _, s := range sections {
		switch s.id {
		case secType:
			n.types, err = scanTypes(s.body)
		case secImport:
			n.imports, err = scanImports(s.body, n.types)
			n.tables += n.imports.tables
		case secFunction:
			n.definedFuncs, err = scanFunctions(s.body, n.types)
		case secTable:
			var k int
			k, err = scanTables(s.body)
			n.tables += k
		case secMemory:
			n.memories, err = vecLen(s.body)
		case secGlobal:
			n.definedGlobals, err = vecLen(s.body)
		}
		if err != nil {
			return nil, err
		}
	}
	return rewrite(context.Background(), sections, &n, Options{})
}

// TestEscapeWouldSpin shows what the first escape did before: the same
// code with one real global is valid, and metered it is stopped (it sets
// its own global, not the fuel).
func TestEscapeWouldSpin(t *testing.T) {
	valid := wasmModule(
		sec(secType, vec(typeVoid)), sec(secFunction, vec(leb(0))),
		sec(secGlobal, vec([]byte{0x7E, 0x01, 0x42, 0x00, 0x0B})),
		sec(secExport, vec(append(name("f"), 0x00, 0x00))),
		sec(secCode, vec(spinSettingGlobal0)))
	out, err := Instrument(valid, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mod := instantiate(t, out)
	if _, _, err := run(t, mod, "f", 1_000_000, time.Now().Add(10*time.Second)); !errors.Is(err, ErrFuelExhausted) {
		t.Fatalf("want ErrFuelExhausted, got %v", err)
	}
}

func TestMaxFunctions(t *testing.T) {
	const n = 100_000
	bodies := make([][]byte, n)
	types := make([][]byte, n)
	for i := range bodies {
		bodies[i], types[i] = body(0x0B), leb(0)
	}
	wasm := wasmModule(sec(secType, vec(typeVoid)), sec(secFunction, vec(types...)), sec(secCode, vec(bodies...)))
	t0 := time.Now()
	_, err := Instrument(wasm, Options{MaxFunctions: 50_000})
	var ie *InstrumentError
	if !errors.As(err, &ie) || ie.Rule != RuleTooManyFunctions {
		t.Fatalf("want %s, got %v", RuleTooManyFunctions, err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("refusing took %v", d)
	}
	t.Log(err)
}

func TestInstrumentContextDeadline(t *testing.T) {
	wasm, err := os.ReadFile("../../../modules/retry-status-aware.wasm")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	if _, err := InstrumentContext(ctx, wasm, Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want context.DeadlineExceeded, got %v", err)
	}
}

// TestValidationCost measures what validating a Go guest as written costs
// (compiling it with wazero's interpreter), next to the rewrite.
func TestValidationCost(t *testing.T) {
	wasm, err := os.ReadFile("../../../modules/retry-status-aware.wasm")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_ = Validate(ctx, wasm, 0) // the validator runtime's creation is not charged
	t0 := time.Now()
	if err := Validate(ctx, wasm, 0); err != nil {
		t.Fatal(err)
	}
	validate := time.Since(t0)
	t0 = time.Now()
	if _, err := rewriteOnly(wasm); err != nil {
		t.Fatal(err)
	}
	rw := time.Since(t0)
	t.Logf("retry-status-aware.wasm (%d bytes): validate %v, rewrite %v", len(wasm), validate, rw)
}

// TestStartSection: a module with a start section instantiates under
// BeginInstantiate, the start function's fuel is accounted, and a start
// function that loops forever is stopped.
func TestStartSection(t *testing.T) {
	ctx := context.Background()
	counter := wasmModule(
		sec(secType, vec(typeVoid, []byte{0x60, 0, 1, 0x7F})),
		sec(secFunction, vec(leb(0), leb(1))),
		sec(secGlobal, vec([]byte{0x7F, 0x01, 0x41, 0x00, 0x0B})),
		sec(secExport, vec(append(name("get"), 0x00, 0x01))),
		sec(secStart, leb(0)),
		sec(secCode, vec(
			body(0x41, 0x2A, 0x24, 0x00, 0x0B), // global 0 = 42
			body(0x23, 0x00, 0x0B))))
	spin := wasmModule(
		sec(secType, vec(typeVoid)), sec(secFunction, vec(leb(0))),
		sec(secStart, leb(0)),
		sec(secCode, vec(body(0x03, 0x40, 0x0C, 0x00, 0x0B, 0x0B))))
	newRuntime := func(t *testing.T) wazero.Runtime {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
		t.Cleanup(func() { rt.Close(ctx) })
		if err := Register(ctx, rt); err != nil {
			t.Fatal(err)
		}
		return rt
	}
	t.Run("runs", func(t *testing.T) {
		rt := newRuntime(t)
		out, err := Instrument(counter, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ictx, c := BeginInstantiate(ctx, 1000, time.Now().Add(time.Minute))
		mod, err := rt.InstantiateWithConfig(ictx, out, wazero.NewModuleConfig().WithName("counter"))
		used, err := c.End(err)
		if err != nil || used <= 0 {
			t.Fatalf("instantiate: used %d, %v", used, err)
		}
		res, _, err := run(t, mod, "get", 1000, time.Time{})
		if err != nil || res[0] != 42 {
			t.Fatalf("get: %v %v", res, err)
		}
	})
	t.Run("outside a call", func(t *testing.T) {
		rt := newRuntime(t)
		out, _ := Instrument(counter, Options{})
		if _, err := rt.Instantiate(ctx, out); err == nil {
			t.Fatal("instantiated a start section with no metered call")
		}
	})
	for _, tc := range []struct {
		name     string
		budget   int64
		deadline time.Duration
		want     error
	}{
		{"loop/fuel", 10_000_000, time.Minute, ErrFuelExhausted},
		{"loop/deadline", 1 << 62, 20 * time.Millisecond, ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRuntime(t)
			out, err := Instrument(spin, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ictx, c := BeginInstantiate(ctx, tc.budget, time.Now().Add(tc.deadline))
			_, err = rt.InstantiateWithConfig(ictx, out, wazero.NewModuleConfig().WithName(""))
			if _, err = c.End(err); !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
		})
	}
}

// TestGrowRefusedTracked: a refused memory.grow is recorded exactly, and
// only for the call that made it.
func TestGrowRefusedTracked(t *testing.T) {
	mod := metered(t, "arith.wasm", Options{MaxMemoryPages: 2})
	call := func(pages uint64) (int32, bool) {
		cctx, c, err := Begin(context.Background(), mod, 1<<20, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := mod.ExportedFunction("grow").Call(cctx, pages)
		if _, err := c.End(err); err != nil {
			t.Fatal(err)
		}
		return int32(res[0]), c.MemoryRefused()
	}
	if r, refused := call(1); r != 1 || refused {
		t.Fatalf("grow within the limit: %d, refused %v", r, refused)
	}
	if r, refused := call(1); r != -1 || !refused {
		t.Fatalf("grow beyond the limit: %d, refused %v", r, refused)
	}
	if r, refused := call(0); r != 2 || refused {
		t.Fatalf("next call: %d, refused %v (a refusal must not leak into the next call)", r, refused)
	}
}

// TestSleepCutAtDeadline: Call.Sleep stops at the deadline and the guest's
// next charge reports it.
func TestSleepCutAtDeadline(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	if err := Register(ctx, rt); err != nil {
		t.Fatal(err)
	}
	var current *Call
	if _, err := rt.NewHostModuleBuilder("host").NewFunctionBuilder().
		WithGoFunction(api.GoFunc(func(context.Context, []uint64) { current.Sleep(int64(2 * time.Second)) }), nil, nil).
		Export("sleep").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	// f: sleep, then count to 1000 (the charges after the sleep).
	wasm := wasmModule(
		sec(secType, vec(typeVoid)),
		sec(secImport, vec(append(append(name("host"), name("sleep")...), 0x00, 0x00))),
		sec(secFunction, vec(leb(0))),
		sec(secExport, vec(append(name("f"), 0x00, 0x01))),
		sec(secCode, vec(body(0x10, 0x00, 0x03, 0x40, 0x0B, 0x0B))))
	out, err := Instrument(wasm, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("sleeper"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	cctx, c, err := Begin(ctx, mod, 1<<40, t0.Add(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	current = c
	_, err = mod.ExportedFunction("f").Call(cctx)
	if _, err = c.End(err); !errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("want ErrDeadlineExceeded, got %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("returned after %v", d)
	}
}
