package abi

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"unsafe"

	"github.com/breakwater-dev/breakwater/guest-sdk/internal/wire"
)

// This file implements the ABI v1 wire codec: the protocol buffers wire
// format, hand-written on top of wire.
//
// Encoding rules (what MarshalABI writes):
//   - fields are written in field-number order;
//   - zero values are omitted (proto3 style), except the required fields,
//     which are always written: Input.route, RetryDecision.retry,
//     FallbackDecision.action, Stub.payload and ClassifyDecision.verdict;
//   - maps are written as repeated embedded entries {1 key, 2 value} in
//     ascending key order, so equal records always encode to equal bytes;
//   - signed integers use plain (not zigzag) varints, like protobuf int32 and
//     int64: negative numbers take ten bytes.
//
// Decoding rules (what UnmarshalABI accepts):
//   - unknown field numbers are skipped, whatever their wire type;
//   - a known field with the wrong wire type, a truncated value or an invalid
//     tag is an error;
//   - when a scalar field appears more than once the last one wins, map
//     entries accumulate, and a repeated embedded error merges (protobuf
//     semantics);
//   - a missing required field is an error (see DecodeError).

// ErrMissingField is the error wrapped by a DecodeError reporting that a
// required field is absent. Test for it with errors.Is.
var ErrMissingField = errors.New("required field missing")

// ErrInvalidValue is the error wrapped by a DecodeError reporting a field
// whose value is out of its allowed set (an unknown fallback action or
// verdict, an empty route). Test for it with errors.Is.
var ErrInvalidValue = errors.New("invalid value")

// DecodeError is the error returned by the UnmarshalABI methods. It says
// which record and field could not be decoded, and where.
type DecodeError struct {
	// Record is the record being decoded: "Input", "RetryDecision",
	// "FallbackDecision", "Stub", "ClassifyDecision", or a nested one such
	// as "Input.error" or "Input.headers entry".
	Record string
	// Field is the field at fault, by name ("route") or, for an unknown or
	// unreadable field, by number ("field 17"). It is empty when the tag
	// itself could not be read.
	Field string
	// Offset is the byte offset, from the start of the buffer given to
	// UnmarshalABI, of the tag of the field at fault; -1 for a missing
	// required field.
	Offset int
	// Reason is a human-readable description of the problem.
	Reason string
	// Err is the underlying error, if any: ErrMissingField, ErrInvalidValue
	// or a wire-format parse error.
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	where := e.Record
	if e.Field != "" {
		where += "." + e.Field
	}
	if e.Offset >= 0 {
		return fmt.Sprintf("abi: decoding %s at offset %d: %s", where, e.Offset, e.Reason)
	}
	return fmt.Sprintf("abi: decoding %s: %s", where, e.Reason)
}

// Unwrap returns the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

// fieldSpec describes a known field of a record: its name and wire type.
type fieldSpec struct {
	name string
	typ  wire.Type
}

// schema lists the known fields of a record, indexed by field number.
type schema struct {
	record string
	fields []fieldSpec
}

var (
	inputSchema = schema{"Input", []fieldSpec{
		1:  {"route", wire.BytesType},
		2:  {"subject", wire.BytesType},
		3:  {"message_id", wire.BytesType},
		4:  {"attempt", wire.VarintType},
		5:  {"max_attempts", wire.VarintType},
		6:  {"elapsed_ms", wire.VarintType},
		7:  {"error", wire.BytesType},
		8:  {"breaker_state", wire.BytesType},
		9:  {"flags", wire.BytesType},
		10: {"headers", wire.BytesType},
		11: {"payload", wire.BytesType},
		12: {"config", wire.BytesType},
		13: {"cache_available", wire.VarintType},
		14: {"cache_age_ms", wire.VarintType},
		15: {"deadline_ms", wire.VarintType},
		16: {"response_headers", wire.BytesType},
		17: {"retry_after_ms", wire.VarintType},
		18: {"target", wire.BytesType},
		19: {"response_status", wire.VarintType},
		20: {"response_body", wire.BytesType},
	}}
	attemptErrorSchema = schema{"Input.error", []fieldSpec{
		1: {"attempt", wire.VarintType},
		2: {"at_unix_ms", wire.VarintType},
		3: {"kind", wire.BytesType},
		4: {"status", wire.VarintType},
		5: {"message", wire.BytesType},
	}}
	retrySchema = schema{"RetryDecision", []fieldSpec{
		1: {"retry", wire.VarintType},
		2: {"delay_ms", wire.VarintType},
		3: {"reason", wire.BytesType},
	}}
	fallbackSchema = schema{"FallbackDecision", []fieldSpec{
		1: {"action", wire.BytesType},
		2: {"reason", wire.BytesType},
	}}
	classifySchema = schema{"ClassifyDecision", []fieldSpec{
		1: {"verdict", wire.BytesType},
		2: {"reason", wire.BytesType},
	}}
	stubSchema = schema{"Stub", []fieldSpec{
		1: {"payload", wire.BytesType},
		2: {"headers", wire.BytesType},
	}}
	flagsEntrySchema           = schema{"Input.flags entry", entryFields}
	headersEntrySchema         = schema{"Input.headers entry", entryFields}
	responseHeadersEntrySchema = schema{"Input.response_headers entry", entryFields}
	stubHeadersSchema          = schema{"Stub.headers entry", entryFields}
	entryFields                = []fieldSpec{
		1: {"key", wire.BytesType},
		2: {"value", wire.BytesType},
	}
)

// reader walks the fields of one record. After next returns true, num, off
// and u (a varint field) or v (a bytes field) describe the field read.
//
// The field is kept in the reader rather than returned, and tags, varints
// and lengths of one byte (the common case: field numbers below 16, values
// and lengths below 128) are decoded inline, the rest by package wire: in a
// Go-built wasm guest, where decoding the input is most of a policy call,
// every call and every returned word costs.
type reader struct {
	s    *schema
	b    []byte
	pos  int // position in b
	base int // absolute offset of b[0]

	num wire.Number // the field read
	off int         // absolute offset of its tag
	u   uint64      // its value, for a varint field
	v   []byte      // its value, for a bytes field
	err error       // why next returned false, nil at the end of the record
}

// next reads the next known field, skipping unknown ones. It returns false
// at the end of the record or on error (then r.err is set).
func (r *reader) next() bool {
	b, pos := r.b, r.pos
	fields := r.s.fields
	for pos < len(b) {
		off := pos
		var tag uint64
		if c := b[pos]; c < 0x80 {
			tag = uint64(c)
			pos++
		} else {
			v, n := wire.ConsumeVarint(b[pos:])
			if n < 0 {
				return r.tagError(off, wire.ParseError(n))
			}
			tag = v
			pos += n
		}
		num, typ := wire.DecodeTag(tag)
		if num < wire.MinValidNumber {
			_, _, n := wire.ConsumeTag(b[off:]) // for the wire package's error
			return r.tagError(off, wire.ParseError(n))
		}
		if int(num) >= len(fields) || fields[num].name == "" {
			// Unknown field: skip it, whatever its type.
			m := wire.ConsumeFieldValue(num, typ, b[pos:])
			if m < 0 {
				return r.unknownError(num, off, wire.ParseError(m))
			}
			pos += m
			continue
		}
		if typ != fields[num].typ {
			return r.typeError(num, typ, off)
		}
		// The value: a varint, or (BytesType, the only other type in the
		// schemas) a varint length and that many bytes.
		var v uint64
		if pos < len(b) && b[pos] < 0x80 {
			v = uint64(b[pos])
			pos++
		} else {
			var n int
			v, n = wire.ConsumeVarint(b[pos:])
			if n < 0 {
				return r.valueError(num, off, wire.ParseError(n))
			}
			pos += n
		}
		r.num, r.off = num, r.base+off
		if typ == wire.VarintType {
			r.u, r.pos = v, pos
			return true
		}
		if v > uint64(len(b)-pos) {
			return r.valueError(num, off, io.ErrUnexpectedEOF)
		}
		end := pos + int(v)
		r.v, r.pos = b[pos:end:end], end
		return true
	}
	r.pos = pos
	return false
}

func (r *reader) unknownError(num wire.Number, off int, perr error) bool {
	r.err = &DecodeError{Record: r.s.record, Field: fmt.Sprintf("field %d", num), Offset: r.base + off,
		Reason: "unknown field with unreadable value: " + perr.Error(), Err: perr}
	return false
}

func (r *reader) typeError(num wire.Number, typ wire.Type, off int) bool {
	spec := r.s.fields[num]
	r.err = &DecodeError{Record: r.s.record, Field: spec.name, Offset: r.base + off,
		Reason: fmt.Sprintf("wire type %s, want %s", typeName(typ), typeName(spec.typ))}
	return false
}

func (r *reader) tagError(off int, perr error) bool {
	r.err = &DecodeError{Record: r.s.record, Offset: r.base + off, Reason: "invalid field tag: " + perr.Error(), Err: perr}
	return false
}

func (r *reader) valueError(num wire.Number, off int, perr error) bool {
	r.err = &DecodeError{Record: r.s.record, Field: r.s.fields[num].name, Offset: r.base + off,
		Reason: "malformed value: " + perr.Error(), Err: perr}
	return false
}

// valueOffset returns the absolute offset of the first byte of the value of
// the bytes field just read, the base of an embedded record.
func (r *reader) valueOffset() int {
	return r.base + r.pos - len(r.v)
}

func typeName(t wire.Type) string {
	switch t {
	case wire.VarintType:
		return "varint"
	case wire.Fixed32Type:
		return "fixed32"
	case wire.Fixed64Type:
		return "fixed64"
	case wire.BytesType:
		return "bytes"
	case wire.StartGroupType:
		return "start-group"
	case wire.EndGroupType:
		return "end-group"
	}
	return fmt.Sprintf("wire type %d", t)
}

func missing(record, name string) error {
	return &DecodeError{Record: record, Field: name, Offset: -1, Reason: "required field is missing", Err: ErrMissingField}
}

// str returns the bytes of v as a string without copying. It is only used
// on buffers the decoder owns and never mutates afterwards.
func str(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	return unsafe.String(&v[0], len(v))
}

// owned copies b so that decoded strings and byte slices can alias it: one
// allocation for the whole record instead of one per field.
func owned(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// ---- Input ----

// SizeABI returns the number of bytes MarshalABI appends for x.
func (x *Input) SizeABI() int {
	n := sizeString(1, x.Route) // required: always written
	n += sizeStringNZ(2, x.Subject)
	n += sizeStringNZ(3, x.MessageID)
	n += sizeVarintNZ(4, uint64(x.Attempt))
	n += sizeVarintNZ(5, uint64(x.MaxAttempts))
	n += sizeVarintNZ(6, uint64(x.ElapsedMs))
	if es := x.Error.size(); es > 0 {
		n += wire.SizeTag(7) + wire.SizeBytes(es)
	}
	n += sizeStringNZ(8, x.BreakerState)
	n += sizeMap(9, x.Flags)
	n += sizeMap(10, x.Headers)
	n += sizeBytesNZ(11, x.Payload)
	n += sizeBytesNZ(12, x.Config)
	if x.CacheAvailable {
		n += wire.SizeTag(13) + 1
	}
	n += sizeVarintNZ(14, uint64(x.CacheAgeMs))
	n += sizeVarintNZ(15, uint64(x.DeadlineMs))
	n += sizeMap(16, x.ResponseHeaders)
	n += sizeVarintNZ(17, uint64(x.RetryAfterMs))
	n += sizeStringNZ(18, x.Target)
	n += sizeVarintNZ(19, uint64(int64(x.ResponseStatus)))
	n += sizeBytesNZ(20, x.ResponseBody)
	return n
}

// MarshalABI appends the ABI v1 encoding of x to dst and returns the extended
// buffer. The encoding is deterministic: equal records give equal bytes. It
// does not allocate when dst has room for SizeABI more bytes (and the maps
// hold at most 16 entries each).
//
// MarshalABI does not validate x: an Input with an empty Route encodes, but
// fails to decode.
func (x *Input) MarshalABI(dst []byte) []byte {
	dst = slices.Grow(dst, x.SizeABI())
	dst = appendString(dst, 1, x.Route)
	dst = appendStringNZ(dst, 2, x.Subject)
	dst = appendStringNZ(dst, 3, x.MessageID)
	dst = appendVarintNZ(dst, 4, uint64(x.Attempt))
	dst = appendVarintNZ(dst, 5, uint64(x.MaxAttempts))
	dst = appendVarintNZ(dst, 6, uint64(x.ElapsedMs))
	if es := x.Error.size(); es > 0 {
		dst = wire.AppendTag(dst, 7, wire.BytesType)
		dst = wire.AppendVarint(dst, uint64(es))
		dst = x.Error.append(dst)
	}
	dst = appendStringNZ(dst, 8, x.BreakerState)
	dst = appendMap(dst, 9, x.Flags)
	dst = appendMap(dst, 10, x.Headers)
	dst = appendBytesNZ(dst, 11, x.Payload)
	dst = appendBytesNZ(dst, 12, x.Config)
	if x.CacheAvailable {
		dst = wire.AppendTag(dst, 13, wire.VarintType)
		dst = append(dst, 1)
	}
	dst = appendVarintNZ(dst, 14, uint64(x.CacheAgeMs))
	dst = appendVarintNZ(dst, 15, uint64(x.DeadlineMs))
	dst = appendMap(dst, 16, x.ResponseHeaders)
	dst = appendVarintNZ(dst, 17, uint64(x.RetryAfterMs))
	dst = appendStringNZ(dst, 18, x.Target)
	dst = appendVarintNZ(dst, 19, uint64(int64(x.ResponseStatus)))
	dst = appendBytesNZ(dst, 20, x.ResponseBody)
	return dst
}

// UnmarshalABI decodes the ABI v1 encoding of an Input from b into x,
// replacing its contents (existing Flags and Headers maps are cleared and
// reused).
//
// The decoded strings and byte slices share one private copy of b: b itself
// is not retained and may be reused by the caller, but keeping any one
// decoded field alive keeps the whole copy alive.
//
// The route field is required and must not be empty. Errors are
// *DecodeError.
func (x *Input) UnmarshalABI(b []byte) error {
	return x.UnmarshalABINoCopy(owned(b))
}

// UnmarshalABINoCopy is UnmarshalABI without the copy: the decoded strings
// and byte slices (Payload, Config, ResponseBody) point into b itself. The caller must
// never modify b afterwards, or the decoded strings would change, which Go
// assumes never happens. It saves one allocation and one copy per record,
// which matters inside a Go guest, whose allocator is slow; the guest SDK
// uses it on input buffers it never reuses.
func (x *Input) UnmarshalABINoCopy(b []byte) error {
	flags, headers, resp := x.Flags, x.Headers, x.ResponseHeaders
	clear(flags)
	clear(headers)
	clear(resp)
	*x = Input{Flags: flags, Headers: headers, ResponseHeaders: resp}
	r := reader{s: &inputSchema, b: b}
	var haveRoute bool
	for r.next() {
		switch r.num {
		case 1:
			x.Route, haveRoute = str(r.v), true
		case 2:
			x.Subject = str(r.v)
		case 3:
			x.MessageID = str(r.v)
		case 4:
			x.Attempt = uint32(r.u)
		case 5:
			x.MaxAttempts = uint32(r.u)
		case 6:
			x.ElapsedMs = int64(r.u)
		case 7:
			if err := x.Error.unmarshal(r.v, r.valueOffset()); err != nil {
				return err
			}
		case 8:
			x.BreakerState = str(r.v)
		case 9:
			if x.Flags == nil {
				x.Flags = make(map[string]string)
			}
			if err := unmarshalEntry(&flagsEntrySchema, r.v, r.valueOffset(), x.Flags); err != nil {
				return err
			}
		case 10:
			if x.Headers == nil {
				x.Headers = make(map[string]string)
			}
			if err := unmarshalEntry(&headersEntrySchema, r.v, r.valueOffset(), x.Headers); err != nil {
				return err
			}
		case 11:
			x.Payload = r.v
		case 12:
			x.Config = r.v
		case 13:
			x.CacheAvailable = r.u != 0
		case 14:
			x.CacheAgeMs = int64(r.u)
		case 15:
			x.DeadlineMs = int64(r.u)
		case 16:
			if x.ResponseHeaders == nil {
				x.ResponseHeaders = make(map[string]string)
			}
			if err := unmarshalEntry(&responseHeadersEntrySchema, r.v, r.valueOffset(), x.ResponseHeaders); err != nil {
				return err
			}
		case 17:
			x.RetryAfterMs = int64(r.u)
		case 18:
			x.Target = str(r.v)
		case 19:
			x.ResponseStatus = int32(int64(r.u))
		case 20:
			x.ResponseBody = r.v
		}
	}
	if r.err != nil {
		return r.err
	}
	if !haveRoute {
		return missing("Input", "route")
	}
	if x.Route == "" {
		return &DecodeError{Record: "Input", Field: "route", Offset: -1, Reason: "must not be empty", Err: ErrInvalidValue}
	}
	return nil
}

// ---- AttemptError (embedded in Input) ----

func (x *AttemptError) size() int {
	n := sizeVarintNZ(1, uint64(x.Attempt))
	n += sizeVarintNZ(2, uint64(x.AtUnixMs))
	n += sizeStringNZ(3, string(x.Kind))
	n += sizeVarintNZ(4, uint64(int64(x.Status)))
	n += sizeStringNZ(5, x.Message)
	return n
}

func (x *AttemptError) append(dst []byte) []byte {
	dst = appendVarintNZ(dst, 1, uint64(x.Attempt))
	dst = appendVarintNZ(dst, 2, uint64(x.AtUnixMs))
	dst = appendStringNZ(dst, 3, string(x.Kind))
	dst = appendVarintNZ(dst, 4, uint64(int64(x.Status)))
	dst = appendStringNZ(dst, 5, x.Message)
	return dst
}

// unmarshal merges the fields in b (an owned buffer) into x. base is the
// absolute offset of b[0].
func (x *AttemptError) unmarshal(b []byte, base int) error {
	r := reader{s: &attemptErrorSchema, b: b, base: base}
	for r.next() {
		switch r.num {
		case 1:
			x.Attempt = uint32(r.u)
		case 2:
			x.AtUnixMs = int64(r.u)
		case 3:
			x.Kind = ErrorKind(str(r.v))
		case 4:
			x.Status = int32(int64(r.u))
		case 5:
			x.Message = str(r.v)
		}
	}
	return r.err
}

// ---- RetryDecision ----

// SizeABI returns the number of bytes MarshalABI appends for x.
func (x *RetryDecision) SizeABI() int {
	return wire.SizeTag(1) + 1 + sizeVarintNZ(2, uint64(x.DelayMs)) + sizeStringNZ(3, x.Reason)
}

// MarshalABI appends the ABI v1 encoding of x to dst and returns the extended
// buffer. The retry field is always written, even when false, since decoders
// require it.
func (x *RetryDecision) MarshalABI(dst []byte) []byte {
	dst = wire.AppendTag(dst, 1, wire.VarintType)
	dst = wire.AppendVarint(dst, wire.EncodeBool(x.Retry))
	dst = appendVarintNZ(dst, 2, uint64(x.DelayMs))
	dst = appendStringNZ(dst, 3, x.Reason)
	return dst
}

// UnmarshalABI decodes the ABI v1 encoding of a RetryDecision from b into x,
// replacing its contents. The retry field is required. A negative delay is
// accepted here; the host treats it as zero. Errors are *DecodeError.
func (x *RetryDecision) UnmarshalABI(b []byte) error {
	*x = RetryDecision{}
	r := reader{s: &retrySchema, b: b}
	var haveRetry bool
	for r.next() {
		switch r.num {
		case 1:
			x.Retry, haveRetry = r.u != 0, true
		case 2:
			x.DelayMs = int64(r.u)
		case 3:
			x.Reason = string(r.v)
		}
	}
	if r.err != nil {
		return r.err
	}
	if !haveRetry {
		return missing("RetryDecision", "retry")
	}
	return nil
}

// ---- FallbackDecision ----

// Valid reports whether a is one of the fallback actions of ABI v1.
func (a FallbackAction) Valid() bool {
	switch a {
	case FallbackCache, FallbackStub, FallbackDeadLetter, FallbackFail:
		return true
	}
	return false
}

// SizeABI returns the number of bytes MarshalABI appends for x.
func (x *FallbackDecision) SizeABI() int {
	return sizeString(1, string(x.Action)) + sizeStringNZ(2, x.Reason)
}

// MarshalABI appends the ABI v1 encoding of x to dst and returns the extended
// buffer. The action field is always written. MarshalABI does not validate
// the action: an unknown one encodes, but fails to decode.
func (x *FallbackDecision) MarshalABI(dst []byte) []byte {
	dst = appendString(dst, 1, string(x.Action))
	dst = appendStringNZ(dst, 2, x.Reason)
	return dst
}

// UnmarshalABI decodes the ABI v1 encoding of a FallbackDecision from b into
// x, replacing its contents. The action field is required and must be one of
// the actions of ABI v1 (see FallbackAction.Valid). Errors are *DecodeError.
func (x *FallbackDecision) UnmarshalABI(b []byte) error {
	*x = FallbackDecision{}
	r := reader{s: &fallbackSchema, b: b}
	var haveAction bool
	actionOff := -1
	for r.next() {
		switch r.num {
		case 1:
			x.Action, haveAction, actionOff = FallbackAction(r.v), true, r.off
		case 2:
			x.Reason = string(r.v)
		}
	}
	if r.err != nil {
		return r.err
	}
	if !haveAction {
		return missing("FallbackDecision", "action")
	}
	if !x.Action.Valid() {
		return &DecodeError{Record: "FallbackDecision", Field: "action", Offset: actionOff,
			Reason: fmt.Sprintf("unknown action %q (want cache, stub, dead_letter or fail)", x.Action), Err: ErrInvalidValue}
	}
	return nil
}

// ---- ClassifyDecision ----

// Valid reports whether v is one of the verdicts of ABI v1.
func (v Verdict) Valid() bool {
	switch v {
	case VerdictSuccess, VerdictRetryable, VerdictPermanent:
		return true
	}
	return false
}

// SizeABI returns the number of bytes MarshalABI appends for x.
func (x *ClassifyDecision) SizeABI() int {
	return sizeString(1, string(x.Verdict)) + sizeStringNZ(2, x.Reason)
}

// MarshalABI appends the ABI v1 encoding of x to dst and returns the extended
// buffer. The verdict field is always written. MarshalABI does not validate
// the verdict: an unknown one encodes, but fails to decode.
func (x *ClassifyDecision) MarshalABI(dst []byte) []byte {
	dst = appendString(dst, 1, string(x.Verdict))
	dst = appendStringNZ(dst, 2, x.Reason)
	return dst
}

// UnmarshalABI decodes the ABI v1 encoding of a ClassifyDecision from b into
// x, replacing its contents. The verdict field is required and must be one
// of the verdicts of ABI v1 (see Verdict.Valid). Errors are *DecodeError.
func (x *ClassifyDecision) UnmarshalABI(b []byte) error {
	*x = ClassifyDecision{}
	r := reader{s: &classifySchema, b: b}
	var haveVerdict bool
	verdictOff := -1
	for r.next() {
		switch r.num {
		case 1:
			x.Verdict, haveVerdict, verdictOff = Verdict(r.v), true, r.off
		case 2:
			x.Reason = string(r.v)
		}
	}
	if r.err != nil {
		return r.err
	}
	if !haveVerdict {
		return missing("ClassifyDecision", "verdict")
	}
	if !x.Verdict.Valid() {
		return &DecodeError{Record: "ClassifyDecision", Field: "verdict", Offset: verdictOff,
			Reason: fmt.Sprintf("unknown verdict %q (want success, retryable or permanent)", x.Verdict), Err: ErrInvalidValue}
	}
	return nil
}

// ---- Stub ----

// SizeABI returns the number of bytes MarshalABI appends for x.
func (x *Stub) SizeABI() int {
	return wire.SizeTag(1) + wire.SizeBytes(len(x.Payload)) + sizeMap(2, x.Headers)
}

// MarshalABI appends the ABI v1 encoding of x to dst and returns the extended
// buffer. The payload field is always written, even when empty, since
// decoders require it; headers are written in ascending key order.
func (x *Stub) MarshalABI(dst []byte) []byte {
	dst = slices.Grow(dst, x.SizeABI())
	dst = wire.AppendTag(dst, 1, wire.BytesType)
	dst = wire.AppendBytes(dst, x.Payload)
	dst = appendMap(dst, 2, x.Headers)
	return dst
}

// UnmarshalABI decodes the ABI v1 encoding of a Stub from b into x,
// replacing its contents (an existing Headers map is cleared and reused). The
// payload field is required but may be empty; when present, Payload is
// non-nil. Like Input.UnmarshalABI, the decoded fields share one private copy
// of b. Errors are *DecodeError.
func (x *Stub) UnmarshalABI(b []byte) error {
	headers := x.Headers
	clear(headers)
	*x = Stub{Headers: headers}
	b = owned(b)
	r := reader{s: &stubSchema, b: b}
	var havePayload bool
	for r.next() {
		switch r.num {
		case 1:
			x.Payload, havePayload = r.v, true
			if x.Payload == nil {
				x.Payload = []byte{}
			}
		case 2:
			if x.Headers == nil {
				x.Headers = make(map[string]string)
			}
			if err := unmarshalEntry(&stubHeadersSchema, r.v, r.valueOffset(), x.Headers); err != nil {
				return err
			}
		}
	}
	if r.err != nil {
		return r.err
	}
	if !havePayload {
		return missing("Stub", "payload")
	}
	return nil
}

// ---- maps ----

// unmarshalEntry decodes one map entry {1 key, 2 value} from b (an owned
// buffer) into m. Missing keys and values are empty strings.
func unmarshalEntry(s *schema, b []byte, base int, m map[string]string) error {
	r := reader{s: s, b: b, base: base}
	var k, v string
	for r.next() {
		if r.num == 1 {
			k = str(r.v)
		} else {
			v = str(r.v)
		}
	}
	if r.err != nil {
		return r.err
	}
	m[k] = v
	return nil
}

func entrySize(k, v string) int {
	return sizeStringNZ(1, k) + sizeStringNZ(2, v)
}

func sizeMap(num wire.Number, m map[string]string) int {
	n := 0
	for k, v := range m {
		n += wire.SizeTag(num) + wire.SizeBytes(entrySize(k, v))
	}
	return n
}

// appendMap appends m as repeated entries in ascending key order.
func appendMap(dst []byte, num wire.Number, m map[string]string) []byte {
	if len(m) == 0 {
		return dst
	}
	var arr [16]string
	keys := arr[:0]
	if len(m) > len(arr) {
		keys = make([]string, 0, len(m))
	}
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m[k]
		dst = wire.AppendTag(dst, num, wire.BytesType)
		dst = wire.AppendVarint(dst, uint64(entrySize(k, v)))
		dst = appendStringNZ(dst, 1, k)
		dst = appendStringNZ(dst, 2, v)
	}
	return dst
}

// ---- scalar helpers ----

func sizeString(num wire.Number, v string) int {
	return wire.SizeTag(num) + wire.SizeBytes(len(v))
}

func sizeStringNZ(num wire.Number, v string) int {
	if v == "" {
		return 0
	}
	return sizeString(num, v)
}

func sizeBytesNZ(num wire.Number, v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return wire.SizeTag(num) + wire.SizeBytes(len(v))
}

func sizeVarintNZ(num wire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return wire.SizeTag(num) + wire.SizeVarint(v)
}

func appendString(dst []byte, num wire.Number, v string) []byte {
	dst = wire.AppendTag(dst, num, wire.BytesType)
	return wire.AppendString(dst, v)
}

func appendStringNZ(dst []byte, num wire.Number, v string) []byte {
	if v == "" {
		return dst
	}
	return appendString(dst, num, v)
}

func appendBytesNZ(dst []byte, num wire.Number, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	dst = wire.AppendTag(dst, num, wire.BytesType)
	return wire.AppendBytes(dst, v)
}

func appendVarintNZ(dst []byte, num wire.Number, v uint64) []byte {
	if v == 0 {
		return dst
	}
	dst = wire.AppendTag(dst, num, wire.VarintType)
	return wire.AppendVarint(dst, v)
}
