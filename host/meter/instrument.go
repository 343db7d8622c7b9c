package meter

import (
	"fmt"
	"slices"
)

// ExportName is the exported mutable i64 global holding the fuel left.
const ExportName = "bw_fuel"

// Options shape the rewrite.
type Options struct {
	// MaxMemoryPages clamps the memory maximum (64 KiB pages); 0 keeps the
	// module's own.
	MaxMemoryPages uint32
}

// InstrumentError says why a module cannot be instrumented.
type InstrumentError struct {
	Offset int // byte offset in the module (or in the section being read)
	Reason string
}

func (e *InstrumentError) Error() string {
	return fmt.Sprintf("cannot meter module: %s (offset %d)", e.Reason, e.Offset)
}

// Section ids.
const (
	secType   = 1
	secStart  = 8
	secElem   = 9
	secImport = 2
	secMemory = 5
	secGlobal = 6
	secExport = 7
	secCode   = 10
)

// sectionOrder gives the position of known sections (custom sections keep
// their place).
var sectionOrder = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

// RefillModule and RefillName name the host function the guest calls when
// its fuel slice runs out (see Register).
const (
	RefillModule = "bw_meter"
	RefillName   = "refill"
)

// Instrument returns wasm rewritten for metering (see the package doc).
func Instrument(wasm []byte, o Options) ([]byte, error) {
	sections, err := parseSections(wasm)
	if err != nil {
		return nil, err
	}
	var imports importCounts
	definedGlobals, types := 0, 0
	for i := 0; i < len(sections); i++ {
		s := sections[i]
		switch s.id {
		case 0:
			// The name section would name the wrong functions once indices
			// shift; it only serves debuggers.
			if r := (&reader{b: s.body}); customName(r) == "name" {
				sections = slices.Delete(sections, i, i+1)
				i--
			}
		case secType:
			if types, err = vecLen(s.body); err != nil {
				return nil, err
			}
		case secImport:
			if imports, err = scanImports(s.body); err != nil {
				return nil, err
			}
		case secGlobal:
			if definedGlobals, err = vecLen(s.body); err != nil {
				return nil, err
			}
		}
	}
	fuelIndex := uint32(imports.globals + definedGlobals)
	refillIndex := uint32(imports.funcs) // appended after the imported functions
	remap := func(f uint32) uint32 {
		if f >= refillIndex {
			return f + 1
		}
		return f
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
	imp = appendU32(imp, uint32(types))
	if i, ok := indexOf(sections, secImport); ok {
		sections[i].body = appendVecItem(sections[i].body, imp)
	} else {
		sections = insertSection(sections, section{id: secImport, body: append([]byte{1}, imp...)})
	}

	// The fuel global: remap ref.func in existing initialisers, append ours.
	newGlobal := []byte{0x7E, 0x01, 0x42, 0x00, 0x0B} // mut i64 = i64.const 0
	if i, ok := indexOf(sections, secGlobal); ok {
		body, err := remapGlobals(sections[i].body, remap)
		if err != nil {
			return nil, err
		}
		sections[i].body = appendVecItem(body, newGlobal)
	} else {
		sections = insertSection(sections, section{id: secGlobal, body: append([]byte{1}, newGlobal...)})
	}
	exp := appendName(nil, ExportName)
	exp = append(exp, 0x03) // global
	exp = appendU32(exp, fuelIndex)
	if i, ok := indexOf(sections, secExport); ok {
		body, err := remapExports(sections[i].body, remap)
		if err != nil {
			return nil, err
		}
		sections[i].body = appendVecItem(body, exp)
	} else {
		sections = insertSection(sections, section{id: secExport, body: append([]byte{1}, exp...)})
	}
	if i, ok := indexOf(sections, secStart); ok {
		r := &reader{b: sections[i].body}
		f, err := r.u32()
		if err != nil {
			return nil, err
		}
		sections[i].body = appendU32(nil, remap(f))
	}
	if i, ok := indexOf(sections, secElem); ok {
		if sections[i].body, err = remapElements(sections[i].body, remap); err != nil {
			return nil, err
		}
	}
	if o.MaxMemoryPages > 0 {
		if i, ok := indexOf(sections, secMemory); ok {
			if sections[i].body, err = clampMemory(sections[i].body, o.MaxMemoryPages); err != nil {
				return nil, err
			}
		}
	}
	if i, ok := indexOf(sections, secCode); ok {
		if sections[i].body, err = meterCode(sections[i].body, fuelIndex, refillIndex, remap); err != nil {
			return nil, err
		}
	}
	return encodeModule(sections), nil
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

func customName(r *reader) string {
	n, err := r.u32()
	if err != nil {
		return ""
	}
	b, err := r.bytes(int(n))
	if err != nil {
		return ""
	}
	return string(b)
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
func appendVecItem(body []byte, item []byte) []byte {
	r := &reader{b: body}
	n, _ := r.u32()
	out := appendU32(nil, n+1)
	out = append(out, body[r.pos:]...)
	return append(out, item...)
}

type importCounts struct {
	funcs, globals int
	other          []string // imported globals and tables, as "module.name"
}

// NonFunctionImports lists the globals and tables wasm imports (as
// "module.name"); a host offering only functions refuses them.
func NonFunctionImports(wasm []byte) ([]string, error) {
	sections, err := parseSections(wasm)
	if err != nil {
		return nil, err
	}
	if i, ok := indexOf(sections, secImport); ok {
		c, err := scanImports(sections[i].body)
		return c.other, err
	}
	return nil, nil
}

// scanImports counts imported functions and globals, and rejects imported
// memories and the refill import itself (instrumented twice).
func scanImports(body []byte) (c importCounts, err error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return c, err
	}
	for range n {
		mod, name := customName(r), customName(r)
		if mod == RefillModule && name == RefillName {
			return c, r.fail("the module already imports %s.%s (instrumented twice?)", RefillModule, RefillName)
		}
		kind, err := r.byte()
		if err != nil {
			return c, err
		}
		switch kind {
		case 0x00:
			c.funcs++
			_, err = r.u32()
		case 0x01:
			c.other = append(c.other, mod+"."+name+" (table)")
			if _, err = r.byte(); err == nil {
				err = skipLimits(r)
			}
		case 0x02:
			return c, r.fail("imported memory is not supported: the module must define its own memory")
		case 0x03:
			c.globals++
			c.other = append(c.other, mod+"."+name+" (global)")
			_, err = r.bytes(2)
		case 0x04:
			return c, r.fail("exception tags are not supported")
		default:
			return c, r.fail("unknown import kind 0x%02x", kind)
		}
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

func skipLimits(r *reader) error {
	flag, err := r.byte()
	if err != nil {
		return err
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
// already exporting the fuel global).
func remapExports(body []byte, remap func(uint32) uint32) ([]byte, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(body)+8), n)
	for range n {
		name := customName(r)
		if name == ExportName {
			return nil, r.fail("the module already exports %q (instrumented twice?)", ExportName)
		}
		kind, err := r.byte()
		if err != nil {
			return nil, err
		}
		idx, err := r.u32()
		if err != nil {
			return nil, err
		}
		if kind == 0x00 {
			idx = remap(idx)
		}
		out = appendName(out, name)
		out = append(out, kind)
		out = appendU32(out, idx)
	}
	return out, nil
}

// clampMemory lowers every memory's maximum to limit pages.
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
		if flag&^1 != 0 {
			return nil, r.fail("shared or 64-bit memories are not supported")
		}
		minPages, err := r.u32()
		if err != nil {
			return nil, err
		}
		maxPages := uint32(65536)
		if flag&1 != 0 {
			if maxPages, err = r.u32(); err != nil {
				return nil, err
			}
		}
		if minPages > limit {
			return nil, r.fail("the module needs %d memory pages at start, over the limit of %d", minPages, limit)
		}
		out = append(out, 0x01)
		out = appendU32(out, minPages)
		out = appendU32(out, min(maxPages, limit))
	}
	return out, nil
}
