package meter

import (
	"encoding/binary"
	"fmt"
)

// reader decodes the parts of the wasm binary format the rewriter needs. It
// is strict: a number longer than its type allows, or with unused bits set,
// is malformed (the rewriter re-encodes what it reads, so anything it
// tolerated it would silently repair).
type reader struct {
	b   []byte
	pos int
}

func (r *reader) eof() bool { return r.pos >= len(r.b) }

// fail reports malformed input.
func (r *reader) fail(format string, args ...any) error {
	return &InstrumentError{Rule: RuleMalformed, Offset: r.pos, Reason: fmt.Sprintf(format, args...)}
}

// invalid reports a well-formed but invalid module (a dangling index).
func (r *reader) invalid(format string, args ...any) error {
	return &InstrumentError{Rule: RuleInvalid, Offset: r.pos, Reason: fmt.Sprintf(format, args...)}
}

// unsupported reports a feature the meter refuses on purpose.
func (r *reader) unsupported(format string, args ...any) error {
	return &InstrumentError{Rule: RuleUnsupported, Offset: r.pos, Reason: fmt.Sprintf(format, args...)}
}

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, r.fail("unexpected end of data")
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || r.pos+n > len(r.b) || r.pos+n < r.pos {
		return nil, r.fail("unexpected end of data (want %d bytes)", n)
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

// u32 reads an unsigned LEB128 of at most 5 bytes whose value fits 32 bits.
func (r *reader) u32() (uint32, error) {
	start := r.pos
	var v uint32
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == 4 && c&0xF0 != 0 {
			r.pos = start
			return 0, r.fail("unsigned LEB128 too long or out of range for 32 bits")
		}
		v |= uint32(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, nil // unreachable: the fifth byte has no continuation bit
}

// sleb skips a signed LEB128 of bits bits (32, 33 or 64): at most
// ceil(bits/7) bytes, and the unused bits of the last byte must be copies
// of the sign bit.
func (r *reader) sleb(bits int) error {
	maxBytes := (bits + 6) / 7
	start := r.pos
	for i := 0; i < maxBytes; i++ {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if i == maxBytes-1 {
			used := bits - 7*i // value bits in this byte, the top one being the sign
			if c&0x80 != 0 {
				r.pos = start
				return r.fail("signed LEB128 too long for %d bits", bits)
			}
			rest := c >> (used - 1) // sign bit and the unused bits above it
			if rest != 0 && rest != 0x7F>>(used-1) {
				r.pos = start
				return r.fail("signed LEB128 out of range for %d bits", bits)
			}
			return nil
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return nil
}

// s33 reads a signed 33-bit LEB128 (a block type index), which must be
// non-negative.
func (r *reader) s33() (int64, error) {
	start := r.pos
	if err := r.sleb(33); err != nil {
		return 0, err
	}
	var v int64
	var shift uint
	for _, c := range r.b[start:r.pos] {
		v |= int64(c&0x7F) << shift
		shift += 7
	}
	if last := r.b[r.pos-1]; shift < 64 && last&0x40 != 0 {
		v |= -1 << shift
	}
	return v, nil
}

// end fails unless the reader consumed all its bytes.
func (r *reader) end(what string) error {
	if !r.eof() {
		return r.fail("%d bytes after the end of the %s (entry count does not match the contents?)", len(r.b)-r.pos, what)
	}
	return nil
}

func appendU32(dst []byte, v uint32) []byte { return binary.AppendUvarint(dst, uint64(v)) }

func appendS64(dst []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(dst, c)
		}
		dst = append(dst, c|0x80)
	}
}

// section is one section of a module.
type section struct {
	id   byte
	body []byte
}

// sectionOrder gives the position of known sections (custom sections keep
// their place).
var sectionOrder = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

// parseSections splits wasm into sections, refusing unknown, repeated or
// misordered sections and a section that overruns the module.
func parseSections(wasm []byte) ([]section, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, &InstrumentError{Rule: RuleMalformed, Reason: "not a WebAssembly binary (no \\0asm magic)"}
	}
	if binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, &InstrumentError{Rule: RuleMalformed, Offset: 4, Reason: "unsupported binary version (want 1)"}
	}
	r := &reader{b: wasm, pos: 8}
	var out []section
	last := 0
	for !r.eof() {
		at := r.pos
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		n, err := r.u32()
		if err != nil {
			return nil, err
		}
		body, err := r.bytes(int(n))
		if err != nil {
			return nil, err
		}
		if id != 0 {
			order, ok := sectionOrder[id]
			if !ok {
				return nil, &InstrumentError{Rule: RuleMalformed, Offset: at, Reason: fmt.Sprintf("unknown section id %d", id)}
			}
			if order <= last {
				return nil, &InstrumentError{Rule: RuleMalformed, Offset: at, Reason: fmt.Sprintf("section %d repeated or out of order", id)}
			}
			last = order
		}
		out = append(out, section{id: id, body: body})
	}
	return out, nil
}

func encodeModule(sections []section) []byte {
	size := 8
	for _, s := range sections {
		size += 6 + len(s.body)
	}
	out := make([]byte, 0, size)
	out = append(out, 0, 'a', 's', 'm', 1, 0, 0, 0)
	for _, s := range sections {
		out = append(out, s.id)
		out = appendU32(out, uint32(len(s.body)))
		out = append(out, s.body...)
	}
	return out
}
