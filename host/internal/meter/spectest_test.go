package meter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The WebAssembly core spec test suite, as wazero ships it (wast2json
// output: *.json scripts and *.wasm modules), run twice side by side: plain
// (the reference) and instrumented. Every module goes through Instrument;
// every assertion must give the instrumented module the same outcome as the
// plain one, and the spec's expected values; every invalid or malformed
// binary must be refused by Instrument. Modules the meter refuses on
// purpose (SIMD, imported memory, ...) are counted as unsupported, and the
// assertions on them are not run; a valid module refused as invalid or
// malformed fails the test.

type specScript struct {
	Commands []specCommand `json:"commands"`
}

type specCommand struct {
	Type       string      `json:"type"`
	Line       int         `json:"line"`
	Name       string      `json:"name"`
	Filename   string      `json:"filename"`
	As         string      `json:"as"`
	Action     specAction  `json:"action"`
	Expected   []specValue `json:"expected"`
	ModuleType string      `json:"module_type"`
	Text       string      `json:"text"`
}

type specAction struct {
	Type   string      `json:"type"`
	Module string      `json:"module"`
	Field  string      `json:"field"`
	Args   []specValue `json:"args"`
}

type specValue struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// wazeroSpecDir finds wazero's spec test data in the module cache.
func wazeroSpecDir(t *testing.T) string {
	const mod = "github.com/tetratelabs/wazero"
	var dirs []string
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod).Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path != mod {
				continue
			}
			cache := os.Getenv("GOMODCACHE")
			if cache == "" {
				if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
					cache = strings.TrimSpace(string(out))
				}
			}
			if cache != "" {
				dirs = append(dirs, filepath.Join(cache, mod+"@"+d.Version))
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "internal", "integration_test", "spectest")
		if _, err := os.Stat(filepath.Join(p, "v2", "testdata")); err == nil {
			return p
		}
	}
	t.Skipf("wazero's spec test data not found (looked in %q): run `go mod download %s`", dirs, mod)
	return ""
}

// specStats counts what the suite did.
type specStats struct {
	files, modules, modulesUnsupported         int
	assertions, assertionsOnUnsupported        int
	refusedInvalid, refusedMalformed           int
	refusedUnsupported, strictRewriterRefusals int
	textSkipped, wazeroAccepts, plainOnly      int
	validateRefusals                           int
	unsupportedWhy                             map[string]int
}

func TestSpecSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("the spec suite takes a while: not in -short")
	}
	dir := wazeroSpecDir(t)
	spectestWasm, err := os.ReadFile(filepath.Join(dir, "testdata", "spectest.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	total := &specStats{unsupportedWhy: map[string]int{}}
	for _, v := range []struct {
		name     string
		features api.CoreFeatures
	}{{"v1", api.CoreFeaturesV1}, {"v2", api.CoreFeaturesV2}} {
		files, _ := filepath.Glob(filepath.Join(dir, v.name, "testdata", "*.json"))
		if len(files) == 0 {
			t.Fatalf("no spec scripts in %s", filepath.Join(dir, v.name, "testdata"))
		}
		sort.Strings(files)
		for _, f := range files {
			t.Run(v.name+"/"+strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
				runSpecScript(t, f, v.features, spectestWasm, total)
			})
		}
	}
	why := make([]string, 0, len(total.unsupportedWhy))
	for k, n := range total.unsupportedWhy {
		why = append(why, fmt.Sprintf("%5d  %s", n, k))
	}
	sort.Strings(why)
	t.Logf("spec suite in %v: %d scripts; %d modules instantiated metered and plain, %d refused as unsupported; "+
		"%d assertions passed metered = plain = spec (%d of them checked against plain only: their script left a module out), %d not run (on unsupported modules); "+
		"invalid/malformed binaries refused: %d invalid, %d malformed, %d as unsupported (Validate alone refuses %d of them, the strict rewriter alone %d, wazero's compile accepts %d of them); "+
		"%d text-format assertions skipped (no binary to test)\nunsupported modules by reason:\n%s",
		time.Since(t0).Round(time.Millisecond), total.files, total.modules, total.modulesUnsupported,
		total.assertions, total.plainOnly, total.assertionsOnUnsupported,
		total.refusedInvalid, total.refusedMalformed, total.refusedUnsupported, total.validateRefusals, total.strictRewriterRefusals, total.wazeroAccepts,
		total.textSkipped, strings.Join(why, "\n"))
}

// specWorld is one runtime: plain or metered.
type specWorld struct {
	rt      wazero.Runtime
	metered bool
}

// pair is a module instantiated in both worlds; metered is nil when the
// meter refused it as unsupported.
type pair struct {
	plain, metered api.Module
}

const specBudget = 1 << 50

func runSpecScript(t *testing.T, path string, features api.CoreFeatures, spectestWasm []byte, total *specStats) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var script specScript
	if err := json.Unmarshal(raw, &script); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	ctx := context.Background()
	newWorld := func(metered bool) *specWorld {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCoreFeatures(features))
		t.Cleanup(func() { rt.Close(ctx) })
		w := &specWorld{rt: rt, metered: metered}
		code := spectestWasm
		if metered {
			if err := Register(ctx, rt); err != nil {
				t.Fatal(err)
			}
			var err error
			if code, err = Instrument(spectestWasm, Options{Features: features}); err != nil {
				t.Fatalf("instrumenting the spectest module: %v", err)
			}
		}
		if _, err := w.instantiate(ctx, code, "spectest"); err != nil {
			t.Fatalf("spectest module: %v", err)
		}
		return w
	}
	plain, metered := newWorld(false), newWorld(true)
	total.files++

	modules := map[string]*pair{}
	var last *pair
	skipped := false // a module of the script was refused as unsupported
	for i := 0; i < len(script.Commands); i++ {
		c := &script.Commands[i]
		at := fmt.Sprintf("%s:%d %s", filepath.Base(path), c.Line, c.Type)
		switch c.Type {
		case "module":
			bin := readSpecFile(t, dir, c.Filename)
			name := ""
			if i+1 < len(script.Commands) && script.Commands[i+1].Type == "register" {
				name = script.Commands[i+1].As
				i++
			}
			p := &pair{}
			if c.Name != "" {
				modules[c.Name] = p
			}
			last = p
			// An unsupported module is left out of both worlds, so they
			// keep the same state.
			code, err := Instrument(bin, Options{Features: features})
			if err != nil {
				var ie *InstrumentError
				if !errors.As(err, &ie) || ie.Rule != RuleUnsupported {
					t.Fatalf("%s: a valid module was refused: %v", at, err)
				}
				total.modulesUnsupported++
				total.unsupportedWhy[unsupportedReason(ie)]++
				skipped = true
				continue
			}
			if p.plain, err = plain.instantiate(ctx, bin, name); err != nil {
				if skipped {
					// It links to a module left out (or to state only
					// assertions on one would have made).
					total.modulesUnsupported++
					total.unsupportedWhy["links to a module refused as unsupported"]++
					continue
				}
				t.Fatalf("%s: the plain module does not instantiate: %v", at, err)
			}
			if p.metered, err = metered.instantiate(ctx, code, name); err != nil {
				t.Fatalf("%s: the metered module does not instantiate: %v", at, err)
			}
			total.modules++
		case "assert_return", "action", "assert_trap", "assert_exhaustion":
			p := last
			if c.Action.Module != "" {
				p = modules[c.Action.Module]
			}
			if p == nil {
				t.Fatalf("%s: no module", at)
			}
			if p.metered == nil || p.plain == nil {
				total.assertionsOnUnsupported++
				continue
			}
			if skipped {
				// The script's state may depend on a module left out: the
				// spec's values no longer apply, plain's still do.
				total.plainOnly++
				c.Expected = nil
			}
			checkAction(t, at, c, p, skipped)
			total.assertions++
		case "assert_invalid", "assert_malformed":
			if c.ModuleType == "text" {
				total.textSkipped++
				continue
			}
			bin := readSpecFile(t, dir, c.Filename)
			if cm, err := plain.rt.CompileModule(ctx, bin); err == nil {
				cm.Close(ctx)
				total.wazeroAccepts++ // wazero checks some rules only at instantiation
			}
			_, err := Instrument(bin, Options{Features: features})
			var ie *InstrumentError
			if !errors.As(err, &ie) {
				t.Fatalf("%s (%s): Instrument accepted an invalid module (err %v)", at, c.Text, err)
			}
			switch ie.Rule {
			case RuleInvalid:
				total.refusedInvalid++
			case RuleMalformed:
				total.refusedMalformed++
			case RuleUnsupported:
				total.refusedUnsupported++
			default:
				t.Fatalf("%s: refused with rule %q: %v", at, ie.Rule, err)
			}
			// Refused for what it is, not only for what the meter does not
			// support: by the validation of the original or by the strict
			// rewriter as malformed or invalid.
			_, strictErr := rewriteOnly(bin)
			if strictErr != nil {
				total.strictRewriterRefusals++
			}
			validateErr := Validate(ctx, bin, features)
			if validateErr != nil {
				total.validateRefusals++
			}
			var se *InstrumentError
			if validateErr == nil && !(errors.As(strictErr, &se) && (se.Rule == RuleInvalid || se.Rule == RuleMalformed)) {
				t.Fatalf("%s (%s): refused only as unsupported (%v): neither validation nor the strict rewriter refuses it", at, c.Text, err)
			}
			total.assertions++
		case "assert_unlinkable", "assert_uninstantiable":
			bin := readSpecFile(t, dir, c.Filename)
			code, err := Instrument(bin, Options{Features: features})
			if err != nil {
				var ie *InstrumentError
				switch {
				case errors.As(err, &ie) && ie.Rule == RuleUnsupported:
					total.assertionsOnUnsupported++
					skipped = true // its partial instantiation would have had effects
					continue
				case errors.As(err, &ie) && ie.Rule == RuleInvalid:
					// wazero refuses some of these at compile time already.
					if _, cerr := plain.rt.CompileModule(ctx, bin); cerr != nil {
						total.assertions++
						continue
					}
				}
				t.Fatalf("%s: a valid module was refused: %v", at, err)
			}
			_, plainErr := plain.instantiate(ctx, bin, "")
			_, meteredErr := metered.instantiate(ctx, code, "")
			if (plainErr == nil) != (meteredErr == nil) {
				t.Fatalf("%s (%s): plain instantiation: %v; metered: %v", at, c.Text, plainErr, meteredErr)
			}
			if c.Type == "assert_unlinkable" && meteredErr == nil {
				t.Fatalf("%s (%s): linked", at, c.Text)
			}
			if meteredErr != nil && (errors.Is(meteredErr, ErrFuelExhausted) || errors.Is(meteredErr, ErrDeadlineExceeded)) {
				t.Fatalf("%s: stopped by the meter: %v", at, meteredErr)
			}
			total.assertions++
		case "register":
			t.Fatalf("%s: register not right after its module", at)
		default:
			t.Fatalf("%s: unknown command", at)
		}
	}
}

func readSpecFile(t *testing.T, dir, name string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unsupportedReason(ie *InstrumentError) string {
	r := ie.Reason
	if i := strings.Index(r, ": "); strings.HasPrefix(r, "function ") && i >= 0 {
		r = r[i+2:]
	}
	return r
}

// instantiate instantiates code (start section included, metered when the
// world is) under name ("" anonymous).
func (w *specWorld) instantiate(ctx context.Context, code []byte, name string) (api.Module, error) {
	cfg := wazero.NewModuleConfig().WithName(name)
	if !w.metered {
		return w.rt.InstantiateWithConfig(ctx, code, cfg)
	}
	ictx, c := BeginInstantiate(ctx, specBudget, time.Now().Add(20*time.Second))
	mod, err := w.rt.InstantiateWithConfig(ictx, code, cfg)
	_, err = c.End(err)
	return mod, err
}

// checkAction runs an invoke or get in both worlds and compares.
// With diverged set (the script left a module out), only plain is the
// reference: an assert_return may then fail in both worlds alike.
func checkAction(t *testing.T, at string, c *specCommand, p *pair, diverged bool) {
	t.Helper()
	if c.Action.Type == "get" {
		pg, mg := p.plain.ExportedGlobal(c.Action.Field), p.metered.ExportedGlobal(c.Action.Field)
		if pg == nil || mg == nil {
			t.Fatalf("%s: no global %q", at, c.Action.Field)
		}
		want := []specValue(c.Expected)
		compareResults(t, at, []api.ValueType{pg.Type()}, []uint64{pg.Get()}, []uint64{mg.Get()}, want)
		return
	}
	if c.Action.Type != "invoke" {
		t.Fatalf("%s: unknown action %q", at, c.Action.Type)
	}
	args := make([]uint64, len(c.Action.Args))
	for i, a := range c.Action.Args {
		args[i] = specBits(t, at, a)
	}
	pf, mf := p.plain.ExportedFunction(c.Action.Field), p.metered.ExportedFunction(c.Action.Field)
	if pf == nil || mf == nil {
		t.Fatalf("%s: no function %q", at, c.Action.Field)
	}
	ctx := context.Background()
	pres, perr := pf.Call(ctx, args...)
	cctx, call, err := Begin(ctx, p.metered, specBudget, time.Now().Add(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	mres, merr := mf.Call(cctx, args...)
	_, merr = call.End(merr)
	if errors.Is(merr, ErrFuelExhausted) || errors.Is(merr, ErrDeadlineExceeded) {
		t.Fatalf("%s %s: stopped by the meter: %v", at, c.Action.Field, merr)
	}
	both := c.Type == "assert_trap" || c.Type == "assert_exhaustion" || (diverged && perr != nil)
	if both {
		if perr == nil || merr == nil {
			t.Fatalf("%s %s (%s): plain error %v, metered error %v: want both to fail", at, c.Action.Field, c.Text, perr, merr)
		}
		if pl, ml := firstLine(perr), firstLine(merr); pl != ml {
			t.Fatalf("%s %s: plain failed with %q, metered with %q", at, c.Action.Field, pl, ml)
		}
		return
	}
	if perr != nil || merr != nil {
		t.Fatalf("%s %s: plain error %v, metered error %v", at, c.Action.Field, perr, merr)
	}
	compareResults(t, at+" "+c.Action.Field, mf.Definition().ResultTypes(), pres, mres, c.Expected)
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// compareResults checks metered results against plain and the spec.
func compareResults(t *testing.T, at string, types []api.ValueType, plain, metered []uint64, want []specValue) {
	t.Helper()
	if len(plain) != len(metered) {
		t.Fatalf("%s: %d results plain, %d metered", at, len(plain), len(metered))
	}
	if want != nil && len(want) != len(metered) {
		t.Fatalf("%s: %d results, the spec expects %d", at, len(metered), len(want))
	}
	for i, typ := range types {
		p, m := plain[i], metered[i]
		switch typ {
		case 0x70: // funcref (api has no name for it)
			// Function references are pointers, different in each world.
			if (p == 0) != (m == 0) {
				t.Fatalf("%s: result %d: funcref null %v plain, %v metered", at, i, p == 0, m == 0)
			}
		case api.ValueTypeF32:
			if !(isNaN32(p) && isNaN32(m)) && uint32(p) != uint32(m) {
				t.Fatalf("%s: result %d: %#x plain, %#x metered", at, i, p, m)
			}
		case api.ValueTypeF64:
			if !(isNaN64(p) && isNaN64(m)) && p != m {
				t.Fatalf("%s: result %d: %#x plain, %#x metered", at, i, p, m)
			}
		case api.ValueTypeI32:
			if uint32(p) != uint32(m) {
				t.Fatalf("%s: result %d: %d plain, %d metered", at, i, p, m)
			}
		default:
			if p != m {
				t.Fatalf("%s: result %d: %d plain, %d metered", at, i, p, m)
			}
		}
		if want != nil {
			checkExpected(t, at, i, typ, m, want[i])
		}
	}
}

func isNaN32(v uint64) bool { return math.IsNaN(float64(math.Float32frombits(uint32(v)))) }
func isNaN64(v uint64) bool { return math.IsNaN(math.Float64frombits(v)) }

func checkExpected(t *testing.T, at string, i int, typ api.ValueType, got uint64, w specValue) {
	t.Helper()
	s, _ := w.Value.(string)
	switch {
	case w.Type == "funcref":
		if (s == "null") != (got == 0) && w.Value != nil {
			t.Fatalf("%s: result %d: funcref %#x, want %v", at, i, got, w.Value)
		}
		return
	case s == "nan:canonical" || s == "nan:arithmetic":
		var ok bool
		if w.Type == "f32" {
			b := uint32(got)
			ok = b&0x7FFFFFFF == 0x7FC00000 || (s == "nan:arithmetic" && b&0x7FC00000 == 0x7FC00000)
		} else {
			ok = got&0x7FFFFFFFFFFFFFFF == 0x7FF8000000000000 || (s == "nan:arithmetic" && got&0x7FF8000000000000 == 0x7FF8000000000000)
		}
		if !ok {
			t.Fatalf("%s: result %d: %#x, want %s", at, i, got, s)
		}
		return
	}
	want := specBits(t, at, w)
	if typ == api.ValueTypeI32 || typ == api.ValueTypeF32 {
		got, want = uint64(uint32(got)), uint64(uint32(want))
	}
	if got != want {
		t.Fatalf("%s: result %d: %#x, the spec expects %#x (%v)", at, i, got, want, w.Value)
	}
}

// specBits converts a wast2json value to wazero's uint64 encoding.
func specBits(t *testing.T, at string, v specValue) uint64 {
	t.Helper()
	s, ok := v.Value.(string)
	if !ok || s == "null" {
		if v.Type == "v128" {
			t.Fatalf("%s: v128 value in a supported module", at)
		}
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		i, err2 := strconv.ParseInt(s, 10, 64)
		if err2 != nil {
			t.Fatalf("%s: value %q: %v", at, s, err)
		}
		n = uint64(i)
	}
	switch v.Type {
	case "externref":
		return n + 1 // wazero's externref 0 is null: shift like wazero's own driver
	case "i32", "f32":
		return uint64(uint32(n))
	}
	return n
}
