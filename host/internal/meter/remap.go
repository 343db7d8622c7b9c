package meter

// remapGlobals rewrites ref.func in global initialisers.
func remapGlobals(body []byte, remap func(uint32) uint32, ix *indexCheck) ([]byte, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(body)+8), n)
	for range n {
		start := r.pos
		if err := valType(r); err != nil {
			return nil, err
		}
		if err := mutability(r); err != nil {
			return nil, err
		}
		out = append(out, r.b[start:r.pos]...)
		if out, err = remapConstExpr(r, out, remap, ix); err != nil {
			return nil, err
		}
	}
	return out, r.end("global section")
}

// remapConstExpr copies a constant expression through its end, shifting
// ref.func indices.
func remapConstExpr(r *reader, out []byte, remap func(uint32) uint32, ix *indexCheck) ([]byte, error) {
	for range 1 << 16 {
		start := r.pos
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch op {
		case 0x0B:
			return append(out, op), nil
		case 0xD2:
			f, err := r.u32()
			if err != nil {
				return nil, err
			}
			if err := ix.fn(r, f); err != nil {
				return nil, err
			}
			out = append(out, op)
			out = appendU32(out, remap(f))
			continue
		case 0x41:
			err = r.sleb(32)
		case 0x42:
			err = r.sleb(64)
		case 0x43:
			_, err = r.bytes(4)
		case 0x44:
			_, err = r.bytes(8)
		case 0x23:
			var g uint32
			if g, err = r.u32(); err == nil {
				err = ix.constGlobal(r, g)
			}
		case 0xD0:
			err = refType(r)
		case 0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E: // extended constant arithmetic
		case 0xFD:
			r.pos--
			return nil, r.unsupported("SIMD instructions are not supported")
		default:
			r.pos--
			return nil, r.invalid("unsupported instruction 0x%02x in a constant expression", op)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r.b[start:r.pos]...)
	}
	return nil, r.unsupported("constant expression too long")
}

// remapElements shifts function indices in element segments (all eight
// encodings).
func remapElements(body []byte, remap func(uint32) uint32, ix *indexCheck) ([]byte, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(body)+16), n)
	copyU32 := func() error {
		v, err := r.u32()
		out = appendU32(out, v)
		return err
	}
	for range n {
		flags, err := r.u32()
		if err != nil {
			return nil, err
		}
		if flags > 7 {
			return nil, r.fail("unknown element segment encoding %d", flags)
		}
		out = appendU32(out, flags)
		if flags&2 != 0 && flags&1 == 0 { // explicit table index (2, 6)
			if err := copyU32(); err != nil {
				return nil, err
			}
		}
		if flags&1 == 0 { // active: offset expression
			if out, err = remapConstExpr(r, out, remap, ix); err != nil {
				return nil, err
			}
		}
		if flags&3 != 0 { // elemkind (1,2,3) or reftype (5,6,7)
			start := r.pos
			if flags&4 == 0 {
				var k byte
				if k, err = r.byte(); err == nil && k != 0x00 {
					r.pos--
					err = r.fail("unknown element kind 0x%02x", k)
				}
			} else {
				err = refType(r)
			}
			if err != nil {
				return nil, err
			}
			out = append(out, r.b[start:r.pos]...)
		}
		count, err := r.u32()
		if err != nil {
			return nil, err
		}
		out = appendU32(out, count)
		for range count {
			if flags&4 == 0 { // function indices
				f, err := r.u32()
				if err != nil {
					return nil, err
				}
				if err := ix.fn(r, f); err != nil {
					return nil, err
				}
				out = appendU32(out, remap(f))
			} else if out, err = remapConstExpr(r, out, remap, ix); err != nil {
				return nil, err
			}
		}
	}
	return out, r.end("element section")
}
