package meter

import (
	"encoding/binary"
	"fmt"
)

// reader decodes the parts of the wasm binary format the rewriter needs.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) eof() bool { return r.pos >= len(r.b) }

func (r *reader) fail(format string, args ...any) error {
	return &InstrumentError{Offset: r.pos, Reason: fmt.Sprintf(format, args...)}
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
	if n < 0 || r.pos+n > len(r.b) {
		return nil, r.fail("unexpected end of data (want %d bytes)", n)
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

func (r *reader) u32() (uint32, error) {
	v, n := binary.Uvarint(r.b[r.pos:])
	if n <= 0 || v > 1<<32-1 {
		return 0, r.fail("bad unsigned LEB128")
	}
	r.pos += n
	return uint32(v), nil
}

// sleb skips a signed LEB128 of at most maxBytes bytes.
func (r *reader) sleb(maxBytes int) error {
	for i := 0; i < maxBytes; i++ {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return r.fail("signed LEB128 too long")
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

func parseSections(wasm []byte) ([]section, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, &InstrumentError{Reason: "not a WebAssembly binary (no \\0asm magic)"}
	}
	if binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, &InstrumentError{Offset: 4, Reason: "unsupported binary version (want 1)"}
	}
	r := &reader{b: wasm, pos: 8}
	var out []section
	for !r.eof() {
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
