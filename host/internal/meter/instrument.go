package meter

import (
	"context"
	"fmt"
	"slices"

	"github.com/tetratelabs/wazero/api"
)

// Names the rewrite adds to a module.
const (
	// ExportName is the exported mutable i64 global holding the fuel left.
	ExportName = "bw_fuel"
	// GrowRefusedName is the exported mutable i32 global set to 1 when a
	// memory.grow of the module returns -1 (see Call.MemoryRefused).
	GrowRefusedName = "bw_grow_refused"
)

// Options shape the rewrite.
type Options struct {
	// MaxMemoryPages clamps the memory maximum (64 KiB pages); 0 keeps the
	// module's own.
	MaxMemoryPages uint32
	// MaxFunctions refuses a module with more functions (imported and
	// defined) than this, before anything costly is done; 0: no cap.
	MaxFunctions int
	// Features are the WebAssembly features the original must validate
	// under (0: api.CoreFeaturesV2, what wazero's runtimes enable by default).
	Features api.CoreFeatures
}

// Rules of an InstrumentError.
const (
	RuleMalformed        = "malformed"          // not well-formed binary
	RuleInvalid          = "invalid"            // well-formed, fails validation
	RuleUnsupported      = "unsupported"        // valid, uses what the meter refuses (SIMD, threads, ...)
	RuleTooManyFunctions = "too_many_functions" // over Options.MaxFunctions
)

// InstrumentError says why a module cannot be instrumented.
type InstrumentError struct {
	// Rule is RuleMalformed, RuleInvalid, RuleUnsupported or
	// RuleTooManyFunctions ("" is read as RuleUnsupported).
	Rule   string
	Offset int // byte offset in the module (or in the section being read)
	Reason string
	Err    error // wazero's validation error, for RuleInvalid found by wazero
}

func (e *InstrumentError) Error() string {
	switch e.Rule {
	case RuleMalformed:
		return fmt.Sprintf("malformed module: %s (offset %d)", e.Reason, e.Offset)
	case RuleInvalid:
		return fmt.Sprintf("invalid module: %s", e.Reason)
	case RuleTooManyFunctions:
		return "module refused: " + e.Reason
	}
	return fmt.Sprintf("cannot meter module: %s (offset %d)", e.Reason, e.Offset)
}

func (e *InstrumentError) Unwrap() error { return e.Err }

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElem      = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// RefillModule and RefillName name the host function the guest calls when
// its fuel slice runs out (see Register).
const (
	RefillModule = "bw_meter"
	RefillName   = "refill"
)

// Instrument is InstrumentContext without a deadline.
func Instrument(wasm []byte, o Options) ([]byte, error) {
	return InstrumentContext(context.Background(), wasm, o)
}

// counts are the sizes of a module's index spaces.
type counts struct {
	types          int
	imports        importCounts
	definedFuncs   int
	definedGlobals int
	tables         int // imported and defined
	memories       int
}

func (c *counts) funcs() int   { return c.imports.funcs + c.definedFuncs }
func (c *counts) globals() int { return c.imports.globals + c.definedGlobals }

// InstrumentContext validates wasm as written, then returns it rewritten
// for metering (see the package doc). Whatever is refused is an
// *InstrumentError: malformed (the strict reader), too many functions,
// unsupported (SIMD, threads, exceptions, imported memory), or invalid (a
// dangling index found while rewriting, or wazero's validation of the
// original). ctx bounds the work: when it is done the error is ctx's.
func InstrumentContext(ctx context.Context, wasm []byte, o Options) ([]byte, error) {
	sections, err := parseSections(wasm)
	if err != nil {
		return nil, err
	}
	var n counts
	for _, s := range sections {
		switch s.id {
		case secTag:
			return nil, &InstrumentError{Rule: RuleUnsupported, Reason: "exception handling (a tag section) is not supported"}
		case secType:
			if n.types, err = scanTypes(s.body); err != nil {
				return nil, err
			}
		case secImport:
			if n.imports, err = scanImports(s.body, n.types); err != nil {
				return nil, err
			}
			n.tables += n.imports.tables
		case secFunction:
			if n.definedFuncs, err = scanFunctions(s.body, n.types); err != nil {
				return nil, err
			}
		case secTable:
			t, err := scanTables(s.body)
			if err != nil {
				return nil, err
			}
			n.tables += t
		case secMemory:
			if n.memories, err = vecLen(s.body); err != nil {
				return nil, err
			}
		case secGlobal:
			if n.definedGlobals, err = vecLen(s.body); err != nil {
				return nil, err
			}
		}
	}
	if o.MaxFunctions > 0 && n.funcs() > o.MaxFunctions {
		return nil, &InstrumentError{Rule: RuleTooManyFunctions, Reason: fmt.Sprintf("the module has %d functions, over the cap of %d", n.funcs(), o.MaxFunctions)}
	}
	out, err := rewrite(ctx, sections, &n, o)
	if err != nil {
		return nil, err
	}
	// The rewrite appends a type, a function import and globals at exactly
	// the indices a dangling reference of an invalid module would name, so
	// the original is validated as written: only then is the rewrite
	// trusted. (rewrite refuses such references itself too.)
	if err := Validate(ctx, wasm, o.Features); err != nil {
		return nil, err
	}
	return out, nil
}

// rewrite does the instrumentation proper.
func rewrite(ctx context.Context, sections []section, n *counts, o Options) ([]byte, error) {
	sections = slices.Clone(sections)
	var err error
	globals := uint32(n.globals())
	fuelIndex, tmpIndex, refusedIndex := globals, globals+1, globals+2
	refillIndex := uint32(n.imports.funcs) // appended after the imported functions
	remap := func(f uint32) uint32 {
		if f >= refillIndex {
			return f + 1
		}
		return f
	}
	ix := &indexCheck{n: n}

	for i := 0; i < len(sections); i++ {
		s := sections[i]
		if s.id != secCustom {
			continue
		}
		// The name section keeps only its function names, shifted past
		// the refill import: trap stack traces then name the guest's
		// functions. The rest (local names and so on) only serves
		// debuggers, and a malformed name section is dropped, not refused.
		r := &reader{b: s.body}
		name, err := readName(r)
		if err != nil {
			return nil, err
		}
		if name == "name" {
			if body, ok := remapFunctionNames(r.b[r.pos:], remap); ok {
				sections[i].body = appendName(nil, "name")
				sections[i].body = append(sections[i].body, body...)
				continue
			}
			sections = slices.Delete(sections, i, i+1)
			i--
		}
	}

	// The refill import's type: () -> ().
	if i, ok := indexOf(sections, secType); ok {
		sections[i].body = appendVecItem(sections[i].body, []byte{0x60, 0x00, 0x00})
	} else {
		sections = insertSection(sections, section{id: secType, body: []byte{1, 0x60, 0x00, 0x00}})
	}
	imp := appendName(nil, RefillModule)
	imp = appendName(imp, RefillName)
	imp = append(imp, 0x00)
	imp = appendU32(imp, uint32(n.types))
	if i, ok := indexOf(sections, secImport); ok {
		sections[i].body = appendVecItem(sections[i].body, imp)
	} else {
		sections = insertSection(sections, section{id: secImport, body: append([]byte{1}, imp...)})
	}

	// The globals: remap ref.func in existing initialisers, append ours.
	newGlobals := []byte{
		0x7E, 0x01, 0x42, 0x00, 0x0B, // fuel: mut i64 = 0
		0x7F, 0x01, 0x41, 0x00, 0x0B, // tmp: mut i32 = 0
		0x7F, 0x01, 0x41, 0x00, 0x0B, // grow refused: mut i32 = 0
	}
	if i, ok := indexOf(sections, secGlobal); ok {
		body, err := remapGlobals(sections[i].body, remap, ix)
		if err != nil {
			return nil, err
		}
		sections[i].body = appendVecItems(body, 3, newGlobals)
	} else {
		sections = insertSection(sections, section{id: secGlobal, body: append([]byte{3}, newGlobals...)})
	}
	exp := appendName(nil, ExportName)
	exp = append(exp, 0x03) // global
	exp = appendU32(exp, fuelIndex)
	exp = appendName(exp, GrowRefusedName)
	exp = append(exp, 0x03)
	exp = appendU32(exp, refusedIndex)
	if i, ok := indexOf(sections, secExport); ok {
		body, err := remapExports(sections[i].body, remap, ix)
		if err != nil {
			return nil, err
		}
		sections[i].body = appendVecItems(body, 2, exp)
	} else {
		sections = insertSection(sections, section{id: secExport, body: append([]byte{2}, exp...)})
	}
	if i, ok := indexOf(sections, secStart); ok {
		r := &reader{b: sections[i].body}
		f, err := r.u32()
		if err != nil {
			return nil, err
		}
		if err := r.end("start section"); err != nil {
			return nil, err
		}
		if err := ix.fn(r, f); err != nil {
			return nil, err
		}
		sections[i].body = appendU32(nil, remap(f))
	}
	if i, ok := indexOf(sections, secElem); ok {
		if sections[i].body, err = remapElements(sections[i].body, remap, ix); err != nil {
			return nil, err
		}
	}
	if i, ok := indexOf(sections, secMemory); ok {
		if sections[i].body, err = clampMemory(sections[i].body, o.MaxMemoryPages); err != nil {
			return nil, err
		}
	}
	if i, ok := indexOf(sections, secData); ok {
		if err := scanData(sections[i].body, ix); err != nil {
			return nil, err
		}
	}
	if i, ok := indexOf(sections, secDataCount); ok {
		r := &reader{b: sections[i].body}
		if _, err := r.u32(); err != nil {
			return nil, err
		}
		if err := r.end("data count section"); err != nil {
			return nil, err
		}
	}
	code := 0
	if i, ok := indexOf(sections, secCode); ok {
		g := grow{tmp: tmpIndex, refused: refusedIndex}
		if sections[i].body, code, err = meterCode(ctx, sections[i].body, fuelIndex, refillIndex, g, remap, ix); err != nil {
			return nil, err
		}
	}
	if code != n.definedFuncs {
		return nil, &InstrumentError{Rule: RuleMalformed, Reason: fmt.Sprintf("the function section declares %d functions, the code section has %d bodies", n.definedFuncs, code)}
	}
	return encodeModule(sections), nil
}

// indexCheck refuses references past the end of an index space: after the
// rewrite they would name what instrumentation appended.
type indexCheck struct{ n *counts }

func (c *indexCheck) fn(r *reader, f uint32) error {
	if int64(f) >= int64(c.n.funcs()) {
		return r.invalid("unknown function %d (the module has %d)", f, c.n.funcs())
	}
	return nil
}

func (c *indexCheck) global(r *reader, g uint32) error {
	if int64(g) >= int64(c.n.globals()) {
		return r.invalid("unknown global %d (the module has %d)", g, c.n.globals())
	}
	return nil
}

// constGlobal checks global.get in a constant expression: only imported
// immutable globals are constant (WebAssembly 2.0).
func (c *indexCheck) constGlobal(r *reader, g uint32) error {
	if int64(g) >= int64(c.n.imports.globals) || c.n.imports.mutableGlobal[g] {
		return r.invalid("constant expression required: global.get %d is not an imported immutable global", g)
	}
	return nil
}

func (c *indexCheck) typ(r *reader, t uint32) error {
	if int64(t) >= int64(c.n.types) {
		return r.invalid("unknown type %d (the module has %d)", t, c.n.types)
	}
	return nil
}

func appendName(dst []byte, name string) []byte {
	dst = appendU32(dst, uint32(len(name)))
	return append(dst, name...)
}

func vecLen(body []byte) (int, error) {
	r := &reader{b: body}
	n, err := r.u32()
	return int(n), err
}

func readName(r *reader) (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(int(n))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func indexOf(sections []section, id byte) (int, bool) {
	for i, s := range sections {
		if s.id == id {
			return i, true
		}
	}
	return 0, false
}

// insertSection puts s where the binary format orders it.
func insertSection(sections []section, s section) []section {
	at := len(sections)
	for i, x := range sections {
		if x.id != 0 && sectionOrder[x.id] > sectionOrder[s.id] {
			at = i
			break
		}
	}
	return slices.Insert(sections, at, s)
}

// appendVecItem increments a vector's count and appends item.
func appendVecItem(body []byte, item []byte) []byte { return appendVecItems(body, 1, item) }

// appendVecItems adds k to a vector's count and appends items. The body's
// count was read strictly before (scan or remap), so it parses.
func appendVecItems(body []byte, k uint32, items []byte) []byte {
	r := &reader{b: body}
	n, _ := r.u32()
	out := appendU32(nil, n+k)
	out = append(out, body[r.pos:]...)
	return append(out, items...)
}

// valType checks a value type byte.
func valType(r *reader) error {
	t, err := r.byte()
	if err != nil {
		return err
	}
	switch t {
	case 0x7F, 0x7E, 0x7D, 0x7C, 0x70, 0x6F:
		return nil
	case 0x7B:
		r.pos--
		return r.unsupported("SIMD (v128) is not supported")
	}
	r.pos--
	return r.fail("unknown value type 0x%02x", t)
}

func refType(r *reader) error {
	t, err := r.byte()
	if err != nil {
		return err
	}
	if t != 0x70 && t != 0x6F {
		r.pos--
		return r.fail("unknown reference type 0x%02x", t)
	}
	return nil
}

// scanTypes checks the type section and counts its types.
func scanTypes(body []byte) (int, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	for range n {
		form, err := r.byte()
		if err != nil {
			return 0, err
		}
		if form != 0x60 {
			return 0, r.fail("unknown type form 0x%02x (want func 0x60)", form)
		}
		for range 2 { // params, results
			k, err := r.u32()
			if err != nil {
				return 0, err
			}
			for range k {
				if err := valType(r); err != nil {
					return 0, err
				}
			}
		}
	}
	return int(n), r.end("type section")
}

// scanFunctions checks the function section and counts its functions.
func scanFunctions(body []byte, types int) (int, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	ix := &indexCheck{n: &counts{types: types}}
	for range n {
		t, err := r.u32()
		if err != nil {
			return 0, err
		}
		if err := ix.typ(r, t); err != nil {
			return 0, err
		}
	}
	return int(n), r.end("function section")
}

func scanTables(body []byte) (int, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	for range n {
		if err := refType(r); err != nil {
			return 0, err
		}
		if err := skipLimits(r); err != nil {
			return 0, err
		}
	}
	return int(n), r.end("table section")
}

// scanData checks the data section's structure and offset expressions.
func scanData(body []byte, ix *indexCheck) error {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for range n {
		flags, err := r.u32()
		if err != nil {
			return err
		}
		switch flags {
		case 0, 2:
			if flags == 2 {
				if _, err := r.u32(); err != nil {
					return err
				}
			}
			if _, err := remapConstExpr(r, nil, func(f uint32) uint32 { return f }, ix); err != nil {
				return err
			}
		case 1:
		default:
			return r.fail("unknown data segment encoding %d", flags)
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		if _, err := r.bytes(int(size)); err != nil {
			return err
		}
	}
	return r.end("data section")
}

type importCounts struct {
	funcs, globals, tables int
	mutableGlobal          []bool   // per imported global
	other                  []string // imported globals and tables, as "module.name"
}

// NonFunctionImports lists the globals and tables wasm imports (as
// "module.name"); a host offering only functions refuses them.
func NonFunctionImports(wasm []byte) ([]string, error) {
	sections, err := parseSections(wasm)
	if err != nil {
		return nil, err
	}
	types := 0
	for _, s := range sections {
		switch s.id {
		case secType:
			if types, err = scanTypes(s.body); err != nil {
				return nil, err
			}
		case secImport:
			c, err := scanImports(s.body, types)
			return c.other, err
		}
	}
	return nil, nil
}

// scanImports counts imported functions, globals and tables, and rejects
// imported memories and the refill import itself (instrumented twice).
func scanImports(body []byte, types int) (c importCounts, err error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return c, err
	}
	ix := &indexCheck{n: &counts{types: types}}
	for range n {
		mod, err := readName(r)
		if err != nil {
			return c, err
		}
		name, err := readName(r)
		if err != nil {
			return c, err
		}
		if mod == RefillModule && name == RefillName {
			return c, r.unsupported("the module already imports %s.%s (instrumented twice?)", RefillModule, RefillName)
		}
		kind, err := r.byte()
		if err != nil {
			return c, err
		}
		switch kind {
		case 0x00:
			c.funcs++
			var t uint32
			if t, err = r.u32(); err == nil {
				err = ix.typ(r, t)
			}
		case 0x01:
			c.tables++
			c.other = append(c.other, mod+"."+name+" (table)")
			if err = refType(r); err == nil {
				err = skipLimits(r)
			}
		case 0x02:
			return c, r.unsupported("imported memory is not supported: the module must define its own memory")
		case 0x03:
			c.globals++
			c.other = append(c.other, mod+"."+name+" (global)")
			if err = valType(r); err == nil {
				err = mutability(r)
			}
			if err == nil {
				c.mutableGlobal = append(c.mutableGlobal, r.b[r.pos-1] == 1)
			}
		case 0x04:
			return c, r.unsupported("exception tags are not supported")
		default:
			return c, r.fail("unknown import kind 0x%02x", kind)
		}
		if err != nil {
			return c, err
		}
	}
	return c, r.end("import section")
}

func mutability(r *reader) error {
	m, err := r.byte()
	if err != nil {
		return err
	}
	if m > 1 {
		r.pos--
		return r.fail("unknown global mutability 0x%02x", m)
	}
	return nil
}

func skipLimits(r *reader) error {
	flag, err := r.byte()
	if err != nil {
		return err
	}
	if flag > 1 {
		r.pos--
		return r.unsupported("shared or 64-bit limits (flags 0x%02x) are not supported", flag)
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flag&1 != 0 {
		_, err = r.u32()
	}
	return err
}

// remapExports shifts exported function indices (and refuses a module
// already exporting one of the names instrumentation adds).
func remapExports(body []byte, remap func(uint32) uint32, ix *indexCheck) ([]byte, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(body)+8), n)
	for range n {
		name, err := readName(r)
		if err != nil {
			return nil, err
		}
		if name == ExportName || name == GrowRefusedName {
			return nil, r.unsupported("the module already exports %q (instrumented twice?)", name)
		}
		kind, err := r.byte()
		if err != nil {
			return nil, err
		}
		idx, err := r.u32()
		if err != nil {
			return nil, err
		}
		switch kind {
		case 0x00:
			if err := ix.fn(r, idx); err != nil {
				return nil, err
			}
			idx = remap(idx)
		case 0x01:
			if int64(idx) >= int64(ix.n.tables) {
				return nil, r.invalid("unknown table %d", idx)
			}
		case 0x02:
			if int64(idx) >= int64(ix.n.memories) {
				return nil, r.invalid("unknown memory %d", idx)
			}
		case 0x03:
			if err := ix.global(r, idx); err != nil {
				return nil, err
			}
		default:
			return nil, r.fail("unknown export kind 0x%02x", kind)
		}
		out = appendName(out, name)
		out = append(out, kind)
		out = appendU32(out, idx)
	}
	return out, r.end("export section")
}

// clampMemory checks the memory section and lowers every memory's maximum
// to limit pages (limit 0: keeps it).
func clampMemory(body []byte, limit uint32) ([]byte, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		flag, err := r.byte()
		if err != nil {
			return nil, err
		}
		if flag > 1 {
			r.pos--
			return nil, r.unsupported("shared or 64-bit memories are not supported")
		}
		minPages, err := r.u32()
		if err != nil {
			return nil, err
		}
		maxPages, hasMax := uint32(65536), flag&1 != 0
		if hasMax {
			if maxPages, err = r.u32(); err != nil {
				return nil, err
			}
		}
		if limit == 0 {
			out = append(out, flag)
			out = appendU32(out, minPages)
			if hasMax {
				out = appendU32(out, maxPages)
			}
			continue
		}
		if minPages > limit {
			return nil, r.unsupported("the module needs %d memory pages at start, over the limit of %d", minPages, limit)
		}
		out = append(out, 0x01)
		out = appendU32(out, minPages)
		out = appendU32(out, min(maxPages, limit))
	}
	return out, r.end("memory section")
}

// remapFunctionNames rewrites the subsections of a name section: the
// function names (subsection 1) with their indices remapped, and nothing
// else. ok is false when the section does not parse or has no function
// names.
func remapFunctionNames(b []byte, remap func(uint32) uint32) (body []byte, ok bool) {
	r := &reader{b: b}
	for !r.eof() {
		id, err := r.byte()
		if err != nil {
			return nil, false
		}
		size, err := r.u32()
		if err != nil {
			return nil, false
		}
		sub, err := r.bytes(int(size))
		if err != nil {
			return nil, false
		}
		if id != 1 {
			continue
		}
		sr := &reader{b: sub}
		n, err := sr.u32()
		if err != nil {
			return nil, false
		}
		names := appendU32(nil, n)
		for range n {
			idx, err := sr.u32()
			if err != nil {
				return nil, false
			}
			fn, err := readName(sr)
			if err != nil {
				return nil, false
			}
			names = appendName(appendU32(names, remap(idx)), fn)
		}
		if !sr.eof() {
			return nil, false
		}
		body = append(body, 1)
		body = appendU32(body, uint32(len(names)))
		return append(body, names...), true
	}
	return nil, false
}
