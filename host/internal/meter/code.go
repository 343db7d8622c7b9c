package meter

import "context"

// grow names the globals the memory.grow tracking uses.
type grow struct{ tmp, refused uint32 }

// meterCode rewrites every function body of the code section and returns
// how many there were.
func meterCode(ctx context.Context, body []byte, fuel uint32, refill uint32, g grow, remap func(uint32) uint32, ix *indexCheck) ([]byte, int, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, 0, err
	}
	if int64(n) != int64(ix.n.definedFuncs) {
		return nil, 0, r.fail("the code section has %d bodies, the function section declares %d functions", n, ix.n.definedFuncs)
	}
	out := make([]byte, 0, len(body)+len(body)/4)
	out = appendU32(out, n)
	for i := range n {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}
		}
		size, err := r.u32()
		if err != nil {
			return nil, 0, err
		}
		fn, err := r.bytes(int(size))
		if err != nil {
			return nil, 0, err
		}
		metered, err := meterFunction(fn, fuel, refill, g, remap, ix)
		if err != nil {
			if ie, ok := err.(*InstrumentError); ok {
				ie.Reason = "function " + itoa(int(i)) + ": " + ie.Reason
			}
			return nil, 0, err
		}
		out = appendU32(out, uint32(len(metered)))
		out = append(out, metered...)
	}
	if err := r.end("code section"); err != nil {
		return nil, 0, err
	}
	return out, int(n), nil
}

type frame struct {
	loop   bool
	parent int // region enclosing the block
}

// Kinds of edit.
const (
	editCharge = iota // insert the charge of region at at
	editIndex         // replace the function index in [at, end) by value
	editGrow          // insert the memory.grow tracking at at
)

type edit struct {
	kind    int
	at, end int
	region  int
	value   uint32
}

// meterFunction inserts a charge at the function's entry and at every loop
// header; each charges its region's static instruction count. After every
// memory.grow it records a refusal (-1) in the grow-refused global.
func meterFunction(fn []byte, fuel, refill uint32, g grow, remap func(uint32) uint32, ix *indexCheck) ([]byte, error) {
	r := &reader{b: fn}
	groups, err := r.u32()
	if err != nil {
		return nil, err
	}
	for range groups {
		if _, err := r.u32(); err != nil {
			return nil, err
		}
		if err := valType(r); err != nil {
			return nil, err
		}
	}
	regions := []int64{0}
	edits := []edit{{kind: editCharge, at: r.pos, region: 0}}
	var stack []frame
	cur := 0
	done := false
	for !r.eof() {
		if done {
			return nil, r.fail("code after the function's final end")
		}
		op, _ := r.byte()
		regions[cur]++
		switch op {
		case 0x02, 0x04: // block, if
			if err := skipBlockType(r, ix); err != nil {
				return nil, err
			}
			stack = append(stack, frame{parent: cur})
		case 0x03: // loop
			if err := skipBlockType(r, ix); err != nil {
				return nil, err
			}
			stack = append(stack, frame{loop: true, parent: cur})
			cur = len(regions)
			regions = append(regions, 0)
			edits = append(edits, edit{kind: editCharge, at: r.pos, region: cur})
		case 0x0B: // end
			if len(stack) == 0 {
				done = true
				continue
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			cur = f.parent
		case 0x10, 0x12, 0xD2: // call, return_call, ref.func: function indices shift
			at := r.pos
			x, err := r.u32()
			if err != nil {
				return nil, err
			}
			if err := ix.fn(r, x); err != nil {
				return nil, err
			}
			edits = append(edits, edit{kind: editIndex, at: at, end: r.pos, value: remap(x)})
		case 0x40: // memory.grow
			if err := skipImmediates(r, op, ix); err != nil {
				return nil, err
			}
			edits = append(edits, edit{kind: editGrow, at: r.pos})
		default:
			if err := skipImmediates(r, op, ix); err != nil {
				return nil, err
			}
		}
	}
	if !done {
		return nil, r.fail("function body without its final end")
	}
	out := make([]byte, 0, len(fn)+len(edits)*24)
	prev := 0
	for _, e := range edits { // in position order: the scan appended them so
		out = append(out, fn[prev:e.at]...)
		prev = e.at
		switch e.kind {
		case editCharge:
			out = appendCharge(out, fuel, refill, regions[e.region])
		case editGrow:
			out = appendGrowCheck(out, g)
		case editIndex:
			out = appendU32(out, e.value)
			prev = e.end
		}
	}
	return append(out, fn[prev:]...), nil
}

// appendGrowCheck appends, after a memory.grow whose result r is on the
// stack: refused |= r >>> 31 (r is -1 only when refused), leaving r.
func appendGrowCheck(out []byte, g grow) []byte {
	out = append(out, 0x24) // global.set tmp
	out = appendU32(out, g.tmp)
	out = append(out, 0x23) // global.get tmp
	out = appendU32(out, g.tmp)
	out = append(out, 0x23) // global.get tmp
	out = appendU32(out, g.tmp)
	out = append(out, 0x41, 0x1F, 0x76) // i32.const 31; i32.shr_u
	out = append(out, 0x23)             // global.get refused
	out = appendU32(out, g.refused)
	out = append(out, 0x72, 0x24) // i32.or; global.set refused
	return appendU32(out, g.refused)
}

// appendCharge appends: fuel -= cost; if fuel < 0 { refill() }.
func appendCharge(out []byte, fuel, refill uint32, cost int64) []byte {
	out = append(out, 0x23)
	out = appendU32(out, fuel)
	out = append(out, 0x42)
	out = appendS64(out, cost)
	out = append(out, 0x7D, 0x24)
	out = appendU32(out, fuel)
	out = append(out, 0x23)
	out = appendU32(out, fuel)
	out = append(out, 0x42, 0x00, 0x53, 0x04, 0x40, 0x10)
	out = appendU32(out, refill)
	return append(out, 0x0B)
}

func skipBlockType(r *reader, ix *indexCheck) error {
	c, err := r.byte()
	if err != nil {
		return err
	}
	switch c {
	case 0x40, 0x7F, 0x7E, 0x7D, 0x7C, 0x70, 0x6F:
		return nil
	case 0x7B:
		r.pos--
		return r.unsupported("SIMD (v128) is not supported")
	}
	r.pos--
	t, err := r.s33() // type index (multi-value)
	if err != nil {
		return err
	}
	if t < 0 {
		return r.fail("unknown block type %d", t)
	}
	return ix.typ(r, uint32(min(t, 1<<32-1)))
}

// skipImmediates skips the immediates of op (block, loop, if and end are
// handled by the caller).
func skipImmediates(r *reader, op byte, ix *indexCheck) error {
	u32s := func(n int) error {
		for range n {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		return nil
	}
	switch {
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0F || op == 0x1A || op == 0x1B || op == 0xD1:
		return nil
	case op == 0x0C || op == 0x0D:
		return u32s(1)
	case op == 0x0E: // br_table
		n, err := r.u32()
		if err != nil {
			return err
		}
		return u32s(int(n) + 1)
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		t, err := r.u32()
		if err != nil {
			return err
		}
		if err := ix.typ(r, t); err != nil {
			return err
		}
		return u32s(1)
	case op == 0x1C: // select t*
		n, err := r.u32()
		if err != nil {
			return err
		}
		for range n {
			if err := valType(r); err != nil {
				return err
			}
		}
		return nil
	case op == 0x23 || op == 0x24: // global.get, global.set
		g, err := r.u32()
		if err != nil {
			return err
		}
		return ix.global(r, g)
	case op >= 0x20 && op <= 0x26: // locals, table.get/set
		return u32s(1)
	case op >= 0x28 && op <= 0x3E: // loads and stores: memarg
		return u32s(2)
	case op == 0x3F || op == 0x40: // memory.size, memory.grow
		return u32s(1)
	case op == 0x41:
		return r.sleb(32)
	case op == 0x42:
		return r.sleb(64)
	case op == 0x43:
		_, err := r.bytes(4)
		return err
	case op == 0x44:
		_, err := r.bytes(8)
		return err
	case op >= 0x45 && op <= 0xC4: // numeric, conversions, sign extension
		return nil
	case op == 0xD0: // ref.null t
		return refType(r)
	case op == 0xFC:
		sub, err := r.u32()
		if err != nil {
			return err
		}
		switch {
		case sub <= 7: // saturating truncation
			return nil
		case sub == 8: // memory.init
			return u32s(2)
		case sub == 9 || sub == 13 || (sub >= 15 && sub <= 17): // data.drop, elem.drop, table.grow/size/fill
			return u32s(1)
		case sub == 10 || sub == 12 || sub == 14: // memory.copy, table.init, table.copy
			return u32s(2)
		case sub == 11: // memory.fill
			return u32s(1)
		}
		return r.fail("unknown 0xFC instruction %d", sub)
	case op == 0xFD:
		r.pos--
		return r.unsupported("SIMD instructions are not supported")
	case op == 0xFE:
		r.pos--
		return r.unsupported("threads/atomics instructions are not supported")
	case op >= 0x06 && op <= 0x0A, op == 0x18, op == 0x19, op == 0x1F:
		r.pos--
		return r.unsupported("exception-handling instructions are not supported")
	}
	return r.fail("unknown opcode 0x%02x", op)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	p := len(b)
	for i > 0 {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
	}
	return string(b[p:])
}
