package sdktest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// wasmExports returns the sorted names of the functions a WebAssembly
// binary exports, read from its export section. It checks the header and
// the section framing only: the engine validates the rest.
func wasmExports(b []byte) ([]string, error) {
	if len(b) < 8 || !bytes.Equal(b[:4], []byte("\x00asm")) {
		return nil, errors.New("not a WebAssembly module (no \\0asm header)")
	}
	if !bytes.Equal(b[4:8], []byte{1, 0, 0, 0}) {
		return nil, fmt.Errorf("unsupported WebAssembly binary version % x", b[4:8])
	}
	r := wasmReader{b: b, pos: 8}
	var names []string
	for r.pos < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		if uint64(size) > uint64(len(r.b)-r.pos) {
			return nil, fmt.Errorf("section %d of %d bytes runs past the end of the file", id, size)
		}
		end := r.pos + int(size)
		if id != 7 { // not the export section
			r.pos = end
			continue
		}
		sec := wasmReader{b: r.b[:end], pos: r.pos}
		n, err := sec.u32()
		if err != nil {
			return nil, err
		}
		for range n {
			name, err := sec.name()
			if err != nil {
				return nil, err
			}
			kind, err := sec.byte()
			if err != nil {
				return nil, err
			}
			if _, err := sec.u32(); err != nil {
				return nil, err
			}
			if kind == 0 { // a function
				names = append(names, name)
			}
		}
		r.pos = end
	}
	slices.Sort(names)
	return names, nil
}

type wasmReader struct {
	b   []byte
	pos int
}

var errTruncated = errors.New("truncated WebAssembly module")

func (r *wasmReader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

// u32 reads an unsigned LEB128 number of at most 32 bits.
func (r *wasmReader) u32() (uint32, error) {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("malformed LEB128 number in WebAssembly module")
}

func (r *wasmReader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	if uint64(n) > uint64(len(r.b)-r.pos) {
		return "", errTruncated
	}
	s := string(r.b[r.pos : r.pos+int(n)])
	r.pos += int(n)
	return s, nil
}
