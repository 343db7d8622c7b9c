package abi

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/internal/wire"
)

func fullInput() Input {
	return Input{
		Route:       "orders",
		Subject:     "bw.in.orders",
		MessageID:   "msg-42",
		Attempt:     3,
		MaxAttempts: 5,
		ElapsedMs:   1234,
		Error: AttemptError{
			Attempt:  3,
			AtUnixMs: 1_700_000_000_000,
			Kind:     ErrorStatus,
			Status:   503,
			Message:  "service unavailable",
		},
		BreakerState:    "half_open",
		Flags:           map[string]string{"beta": "on", "alpha": "off"},
		Headers:         map[string]string{"Content-Type": "application/json", "X-Trace": "abc"},
		Payload:         []byte(`{"id":7,"name":"widget"}`),
		Config:          []byte(`{"initial_ms":100}`),
		CacheAvailable:  true,
		CacheAgeMs:      5000,
		DeadlineMs:      250,
		ResponseHeaders: map[string]string{"Content-Type": "text/plain", "Retry-After": "2"},
		RetryAfterMs:    2000,
		Target:          "orders-api",
		ResponseStatus:  200,
		ResponseBody:    []byte(`{"error":"quota exceeded"}`),
	}
}

// normalize makes empty maps and slices nil so that reflect.DeepEqual
// compares what the wire can express.
func normalize(in Input) Input {
	if len(in.Flags) == 0 {
		in.Flags = nil
	}
	if len(in.Headers) == 0 {
		in.Headers = nil
	}
	if len(in.Payload) == 0 {
		in.Payload = nil
	}
	if len(in.Config) == 0 {
		in.Config = nil
	}
	if len(in.ResponseHeaders) == 0 {
		in.ResponseHeaders = nil
	}
	if len(in.ResponseBody) == 0 {
		in.ResponseBody = nil
	}
	return in
}

func TestInputRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   Input
	}{
		{"route only", Input{Route: "r"}},
		{"full", fullInput()},
		{"negative status and times", Input{Route: "r", ElapsedMs: -1, DeadlineMs: -5,
			Error: AttemptError{Status: -1, AtUnixMs: -2, Kind: ErrorKind("future_kind")}}},
		{"empty map values and keys", Input{Route: "r", Headers: map[string]string{"": "v", "k": ""}}},
		{"many headers", Input{Route: "r", Headers: manyHeaders(40)}},
		{"binary payload", Input{Route: "r", Payload: []byte{0, 0xff, 0x80, 10}}},
		{"answer only", Input{Route: "r", Target: "t", ResponseStatus: 409, ResponseBody: []byte{0, 0xff, '{'},
			ResponseHeaders: map[string]string{"Content-Type": "application/json"}}},
		{"negative response status", Input{Route: "r", ResponseStatus: -1}},
		{"max response status", Input{Route: "r", ResponseStatus: 1<<31 - 1}},
		{"max values", Input{Route: "r", Attempt: ^uint32(0), MaxAttempts: ^uint32(0),
			Error: AttemptError{Attempt: ^uint32(0), Status: 1<<31 - 1}, CacheAgeMs: 1<<63 - 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.in.MarshalABI(nil)
			if got, want := len(b), tt.in.SizeABI(); got != want {
				t.Errorf("len(MarshalABI) = %d, SizeABI = %d", got, want)
			}
			var out Input
			if err := out.UnmarshalABI(b); err != nil {
				t.Fatalf("UnmarshalABI: %v", err)
			}
			if !reflect.DeepEqual(normalize(out), normalize(tt.in)) {
				t.Errorf("round trip mismatch\n got %+v\nwant %+v", out, tt.in)
			}
			// Re-encoding gives the same bytes.
			if b2 := out.MarshalABI(nil); !bytes.Equal(b, b2) {
				t.Errorf("re-encoding differs:\n%x\n%x", b, b2)
			}
		})
	}
}

func manyHeaders(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[string(rune('A'+i%26))+strings.Repeat("x", i)] = strings.Repeat("v", i)
	}
	return m
}

func TestInputDeterministic(t *testing.T) {
	in := fullInput()
	in.Headers = manyHeaders(30)
	first := in.MarshalABI(nil)
	for i := range 20 {
		// Map iteration order is random: every encoding must still match.
		if b := in.MarshalABI(nil); !bytes.Equal(first, b) {
			t.Fatalf("encoding %d differs from the first", i)
		}
	}
}

func TestInputMarshalAppends(t *testing.T) {
	in := Input{Route: "r"}
	prefix := []byte("prefix")
	b := in.MarshalABI(append([]byte(nil), prefix...))
	if !bytes.HasPrefix(b, prefix) {
		t.Fatalf("MarshalABI did not keep the prefix: %q", b)
	}
	var out Input
	if err := out.UnmarshalABI(b[len(prefix):]); err != nil || out.Route != "r" {
		t.Fatalf("decode after prefix: %+v, %v", out, err)
	}
}

// TestGoldenBytes pins the encoding of small records byte for byte, so that
// an accidental change of field number, order or type is caught.
func TestGoldenBytes(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"input route only", (&Input{Route: "ab"}).MarshalABI(nil), []byte{0x0a, 2, 'a', 'b'}},
		{"input attempt and flag", (&Input{Route: "r", Attempt: 2, Flags: map[string]string{"b": "2", "a": "1"}}).MarshalABI(nil),
			[]byte{0x0a, 1, 'r', 0x20, 2,
				0x4a, 6, 0x0a, 1, 'a', 0x12, 1, '1',
				0x4a, 6, 0x0a, 1, 'b', 0x12, 1, '2'}},
		{"input error", (&Input{Route: "r", Error: AttemptError{Kind: ErrorTimeout, Status: 1}}).MarshalABI(nil),
			[]byte{0x0a, 1, 'r', 0x3a, 11, 0x1a, 7, 't', 'i', 'm', 'e', 'o', 'u', 't', 0x20, 1}},
		{"input cache", (&Input{Route: "r", CacheAvailable: true, DeadlineMs: 300}).MarshalABI(nil),
			[]byte{0x0a, 1, 'r', 0x68, 1, 0x78, 0xac, 0x02}},
		// Fields 16 and up take a two-byte tag: 18<<3|2 = 0x92 0x01.
		{"input answer", (&Input{Route: "r", Target: "t", ResponseStatus: 200, ResponseBody: []byte("{}")}).MarshalABI(nil),
			[]byte{0x0a, 1, 'r', 0x92, 0x01, 1, 't', 0x98, 0x01, 0xc8, 0x01, 0xa2, 0x01, 2, '{', '}'}},
		{"retry false", (&RetryDecision{}).MarshalABI(nil), []byte{0x08, 0}},
		{"retry true", (&RetryDecision{Retry: true, DelayMs: 150, Reason: "x"}).MarshalABI(nil),
			[]byte{0x08, 1, 0x10, 0x96, 0x01, 0x1a, 1, 'x'}},
		{"fallback", (&FallbackDecision{Action: FallbackStub}).MarshalABI(nil), []byte{0x0a, 4, 's', 't', 'u', 'b'}},
		{"stub empty", (&Stub{}).MarshalABI(nil), []byte{0x0a, 0}},
		{"classify", (&ClassifyDecision{Verdict: VerdictPermanent, Reason: "x"}).MarshalABI(nil),
			[]byte{0x0a, 9, 'p', 'e', 'r', 'm', 'a', 'n', 'e', 'n', 't', 0x12, 1, 'x'}},
		{"classify empty verdict", (&ClassifyDecision{}).MarshalABI(nil), []byte{0x0a, 0}},
		{"stub", (&Stub{Payload: []byte("p"), Headers: map[string]string{"k": "v"}}).MarshalABI(nil),
			[]byte{0x0a, 1, 'p', 0x12, 6, 0x0a, 1, 'k', 0x12, 1, 'v'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, tt.want) {
				t.Errorf("encoding\n got %x\nwant %x", tt.got, tt.want)
			}
		})
	}
}

func TestOutputRoundTrip(t *testing.T) {
	retries := []RetryDecision{{}, {Retry: true}, {Retry: true, DelayMs: 1 << 40, Reason: "backoff"}, {DelayMs: -3}}
	for _, d := range retries {
		b := d.MarshalABI(nil)
		if len(b) != d.SizeABI() {
			t.Errorf("%+v: len %d, SizeABI %d", d, len(b), d.SizeABI())
		}
		got := RetryDecision{Retry: true, DelayMs: 9, Reason: "stale"} // must be replaced
		if err := got.UnmarshalABI(b); err != nil || got != d {
			t.Errorf("RetryDecision round trip: got %+v, %v; want %+v", got, err, d)
		}
	}
	for _, a := range []FallbackAction{FallbackCache, FallbackStub, FallbackDeadLetter, FallbackFail} {
		d := FallbackDecision{Action: a, Reason: "because"}
		b := d.MarshalABI(nil)
		if len(b) != d.SizeABI() {
			t.Errorf("%+v: len %d, SizeABI %d", d, len(b), d.SizeABI())
		}
		var got FallbackDecision
		if err := got.UnmarshalABI(b); err != nil || got != d {
			t.Errorf("FallbackDecision round trip: got %+v, %v; want %+v", got, err, d)
		}
	}
	for _, v := range []Verdict{VerdictSuccess, VerdictRetryable, VerdictPermanent} {
		for _, reason := range []string{"", `body field "error": "quota"`} {
			d := ClassifyDecision{Verdict: v, Reason: reason}
			b := d.MarshalABI(nil)
			if len(b) != d.SizeABI() {
				t.Errorf("%+v: len %d, SizeABI %d", d, len(b), d.SizeABI())
			}
			got := ClassifyDecision{Verdict: VerdictSuccess, Reason: "stale"} // must be replaced
			if err := got.UnmarshalABI(b); err != nil || got != d {
				t.Errorf("ClassifyDecision round trip: got %+v, %v; want %+v", got, err, d)
			}
		}
	}
	stubs := []Stub{
		{Payload: []byte{}},
		{Payload: []byte(`{"status":"temporarily unavailable"}`), Headers: map[string]string{"X-Stub": "true", "Content-Type": "application/json"}},
	}
	for _, s := range stubs {
		b := s.MarshalABI(nil)
		if len(b) != s.SizeABI() {
			t.Errorf("%+v: len %d, SizeABI %d", s, len(b), s.SizeABI())
		}
		got := Stub{Headers: map[string]string{"stale": "x"}}
		if err := got.UnmarshalABI(b); err != nil {
			t.Fatalf("Stub UnmarshalABI: %v", err)
		}
		if got.Payload == nil || !bytes.Equal(got.Payload, s.Payload) {
			t.Errorf("Stub payload = %q, want %q (non-nil)", got.Payload, s.Payload)
		}
		if len(got.Headers) != len(s.Headers) || (len(s.Headers) > 0 && !reflect.DeepEqual(got.Headers, s.Headers)) {
			t.Errorf("Stub headers = %v, want %v", got.Headers, s.Headers)
		}
	}
}

// TestUnknownFieldsSkipped appends fields of every wire type with numbers the
// schema does not know, at the top level and inside embedded records.
func TestUnknownFieldsSkipped(t *testing.T) {
	var extra []byte
	extra = wire.AppendTag(extra, 99, wire.VarintType)
	extra = wire.AppendVarint(extra, 12345)
	extra = wire.AppendTag(extra, 100, wire.Fixed32Type)
	extra = wire.AppendFixed32(extra, 1)
	extra = wire.AppendTag(extra, 101, wire.Fixed64Type)
	extra = wire.AppendFixed64(extra, 2)
	extra = wire.AppendTag(extra, 102, wire.BytesType)
	extra = wire.AppendBytes(extra, []byte("future"))
	extra = wire.AppendTag(extra, 103, wire.StartGroupType)
	extra = wire.AppendTag(extra, 1, wire.VarintType)
	extra = wire.AppendVarint(extra, 7)
	extra = wire.AppendTag(extra, 103, wire.EndGroupType)

	// An Input whose embedded error and header entry also carry unknown fields.
	errRec := append((&AttemptError{Kind: ErrorConnect}).append(nil), extra...)
	var in []byte
	in = append(in, extra...)
	in = appendString(in, 1, "orders")
	in = wire.AppendTag(in, 7, wire.BytesType)
	in = wire.AppendBytes(in, errRec)
	entry := append(appendString(appendString(nil, 1, "k"), 2, "v"), extra...)
	in = wire.AppendTag(in, 10, wire.BytesType)
	in = wire.AppendBytes(in, entry)
	in = append(in, extra...)

	var got Input
	if err := got.UnmarshalABI(in); err != nil {
		t.Fatalf("Input with unknown fields: %v", err)
	}
	want := Input{Route: "orders", Error: AttemptError{Kind: ErrorConnect}, Headers: map[string]string{"k": "v"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}

	var rd RetryDecision
	if err := rd.UnmarshalABI(append(extra, (&RetryDecision{Retry: true, DelayMs: 5}).MarshalABI(nil)...)); err != nil || !rd.Retry || rd.DelayMs != 5 {
		t.Errorf("RetryDecision with unknown fields: %+v, %v", rd, err)
	}
	var fd FallbackDecision
	if err := fd.UnmarshalABI(append((&FallbackDecision{Action: FallbackFail}).MarshalABI(nil), extra...)); err != nil || fd.Action != FallbackFail {
		t.Errorf("FallbackDecision with unknown fields: %+v, %v", fd, err)
	}
	var st Stub
	if err := st.UnmarshalABI(append(extra, (&Stub{Payload: []byte("p")}).MarshalABI(nil)...)); err != nil || string(st.Payload) != "p" {
		t.Errorf("Stub with unknown fields: %+v, %v", st, err)
	}
	var cd ClassifyDecision
	if err := cd.UnmarshalABI(append(append(extra, (&ClassifyDecision{Verdict: VerdictRetryable, Reason: "r"}).MarshalABI(nil)...), extra...)); err != nil ||
		cd != (ClassifyDecision{Verdict: VerdictRetryable, Reason: "r"}) {
		t.Errorf("ClassifyDecision with unknown fields: %+v, %v", cd, err)
	}
}

// TestOldDecoderSkipsAnswerFields decodes an Input carrying the fields added
// for classify (18 target, 19 response_status, 20 response_body) with the
// schema of a decoder that predates them, as a module built with an older
// SDK does: they are skipped, and every other field decodes as before.
func TestOldDecoderSkipsAnswerFields(t *testing.T) {
	saved := inputSchema
	t.Cleanup(func() { inputSchema = saved })
	inputSchema = schema{saved.record, saved.fields[:18]} // fields 1-17 only

	full := fullInput()
	b := full.MarshalABI(nil)
	var got Input
	if err := got.UnmarshalABI(b); err != nil {
		t.Fatalf("old decoder on a new Input: %v", err)
	}
	want := full
	want.Target, want.ResponseStatus, want.ResponseBody = "", 0, nil
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Errorf("old decoder:\n got %+v\nwant %+v", got, want)
	}
	// A negative status (ten-byte varint) and a large body are skipped too.
	odd := Input{Route: "r", ResponseStatus: -1, ResponseBody: bytes.Repeat([]byte("b"), 300), Attempt: 2}
	if err := got.UnmarshalABI(odd.MarshalABI(nil)); err != nil || got.Route != "r" || got.Attempt != 2 {
		t.Errorf("old decoder: %+v, %v", got, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	route := appendString(nil, 1, "r")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name       string
		decode     func([]byte) error
		in         []byte
		record     string
		field      string
		offset     int
		is         error // expected errors.Is target, if any
		msgContain string
	}{
		{"input empty buffer", decodeInput, nil, "Input", "route", -1, ErrMissingField, "required field is missing"},
		{"input no route", decodeInput, appendString(nil, 2, "subj"), "Input", "route", -1, ErrMissingField, "Input.route"},
		{"input empty route", decodeInput, appendString(nil, 1, ""), "Input", "route", -1, ErrInvalidValue, "must not be empty"},
		{"input truncated string", decodeInput, cat(route, []byte{0x12, 5, 'a'}), "Input", "subject", 3, io.ErrUnexpectedEOF, "offset 3"},
		{"input truncated length", decodeInput, cat(route, []byte{0x12, 0x85}), "Input", "subject", 3, io.ErrUnexpectedEOF, "malformed value"},
		{"input varint overflow", decodeInput, cat(route, []byte{0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), "Input", "attempt", 3, nil, "overflow"},
		{"input wrong wire type", decodeInput, cat(route, []byte{0x22, 1, 'x'}), "Input", "attempt", 3, nil, "wire type bytes, want varint"},
		{"input truncated varint", decodeInput, cat(route, []byte{0x20, 0x80}), "Input", "attempt", 3, nil, "malformed value"},
		{"input bad tag", decodeInput, cat(route, []byte{0x00}), "Input", "", 3, nil, "invalid field number"},
		{"input truncated tag", decodeInput, cat(route, []byte{0x80}), "Input", "", 3, io.ErrUnexpectedEOF, "invalid field tag"},
		{"input unknown field truncated", decodeInput, cat(route, []byte{0xa2, 0x06, 9, 'x'}), "Input", "field 100", 3, nil, "unknown field"},
		{"input bad embedded error", decodeInput, cat(route, []byte{0x3a, 2, 0x08, 0x80}), "Input.error", "attempt", 5, nil, "Input.error.attempt at offset 5"},
		{"input bad header entry", decodeInput, cat(route, []byte{0x52, 3, 0x0a, 5, 'k'}), "Input.headers entry", "key", 5, nil, "headers entry"},
		{"input bad flag entry", decodeInput, cat(route, []byte{0x4a, 2, 0x10, 0x01}), "Input.flags entry", "value", 5, nil, "wire type varint, want bytes"},
		{"retry missing", decodeRetry, appendString(nil, 3, "why"), "RetryDecision", "retry", -1, ErrMissingField, "RetryDecision.retry"},
		{"retry wrong type", decodeRetry, []byte{0x0a, 0}, "RetryDecision", "retry", 0, nil, "want varint"},
		{"fallback missing", decodeFallback, appendString(nil, 2, "why"), "FallbackDecision", "action", -1, ErrMissingField, "FallbackDecision.action"},
		{"fallback unknown action", decodeFallback, appendString(nil, 1, "explode"), "FallbackDecision", "action", 0, ErrInvalidValue, `unknown action "explode"`},
		{"fallback empty action", decodeFallback, appendString(nil, 1, ""), "FallbackDecision", "action", 0, ErrInvalidValue, "unknown action"},
		{"input bad response status type", decodeInput, cat(route, []byte{0x9a, 0x01, 1, 'x'}), "Input", "response_status", 3, nil, "wire type bytes, want varint"},
		{"input truncated response body", decodeInput, cat(route, []byte{0xa2, 0x01, 9, 'x'}), "Input", "response_body", 3, io.ErrUnexpectedEOF, "malformed value"},
		{"classify missing", decodeClassify, appendString(nil, 2, "why"), "ClassifyDecision", "verdict", -1, ErrMissingField, "ClassifyDecision.verdict"},
		{"classify unknown verdict", decodeClassify, appendString(nil, 1, "maybe"), "ClassifyDecision", "verdict", 0, ErrInvalidValue, `unknown verdict "maybe"`},
		{"classify empty verdict", decodeClassify, appendString(nil, 1, ""), "ClassifyDecision", "verdict", 0, ErrInvalidValue, "unknown verdict"},
		{"classify wrong type", decodeClassify, []byte{0x08, 1}, "ClassifyDecision", "verdict", 0, nil, "want bytes"},
		{"stub missing payload", decodeStub, nil, "Stub", "payload", -1, ErrMissingField, "Stub.payload"},
		{"stub only headers", decodeStub, []byte{0x12, 0}, "Stub", "payload", -1, ErrMissingField, "required"},
		{"stub bad header", decodeStub, []byte{0x0a, 0, 0x12, 1, 0x0a}, "Stub.headers entry", "key", 4, nil, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(tt.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error = %v (%T), want *DecodeError", err, err)
			}
			if de.Record != tt.record || de.Field != tt.field || de.Offset != tt.offset {
				t.Errorf("DecodeError{Record:%q Field:%q Offset:%d}, want {%q %q %d}", de.Record, de.Field, de.Offset, tt.record, tt.field, tt.offset)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msgContain) {
				t.Errorf("message %q does not contain %q", err.Error(), tt.msgContain)
			}
		})
	}
}

func decodeInput(b []byte) error    { var x Input; return x.UnmarshalABI(b) }
func decodeRetry(b []byte) error    { var x RetryDecision; return x.UnmarshalABI(b) }
func decodeFallback(b []byte) error { var x FallbackDecision; return x.UnmarshalABI(b) }
func decodeStub(b []byte) error     { var x Stub; return x.UnmarshalABI(b) }
func decodeClassify(b []byte) error { var x ClassifyDecision; return x.UnmarshalABI(b) }

// TestDecodedDoesNotAliasInput checks that the caller may reuse its buffer
// after UnmarshalABI, and that appending to a decoded slice does not corrupt
// the fields stored after it.
func TestDecodedDoesNotAliasInput(t *testing.T) {
	src := fullInput()
	b := src.MarshalABI(nil)
	var got Input
	if err := got.UnmarshalABI(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xee
	}
	_ = append(got.Payload, "XXXXXXXXXXXXXXXXXXXXXXXX"...)
	if !reflect.DeepEqual(got, src) {
		t.Errorf("decoded record changed after the input buffer was overwritten:\n got %+v\nwant %+v", got, src)
	}
}

func TestUnmarshalReusesAndClearsMaps(t *testing.T) {
	in := Input{Route: "r", Headers: map[string]string{"old": "1"}, Flags: map[string]string{"f": "x"}, Payload: []byte("stale")}
	if err := in.UnmarshalABI((&Input{Route: "new", Headers: map[string]string{"k": "v"}}).MarshalABI(nil)); err != nil {
		t.Fatal(err)
	}
	if in.Route != "new" || len(in.Flags) != 0 || in.Payload != nil || !reflect.DeepEqual(in.Headers, map[string]string{"k": "v"}) {
		t.Errorf("stale state left after UnmarshalABI: %+v", in)
	}
}

func TestFallbackActionValid(t *testing.T) {
	for _, tt := range []struct {
		a    FallbackAction
		want bool
	}{{FallbackCache, true}, {FallbackStub, true}, {FallbackDeadLetter, true}, {FallbackFail, true}, {"", false}, {"Cache", false}, {"drop", false}} {
		if got := tt.a.Valid(); got != tt.want {
			t.Errorf("FallbackAction(%q).Valid() = %v, want %v", tt.a, got, tt.want)
		}
	}
}

func TestVerdictValid(t *testing.T) {
	for _, tt := range []struct {
		v    Verdict
		want bool
	}{{VerdictSuccess, true}, {VerdictRetryable, true}, {VerdictPermanent, true}, {"", false}, {"Success", false}, {"ok", false}} {
		if got := tt.v.Valid(); got != tt.want {
			t.Errorf("Verdict(%q).Valid() = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func FuzzUnmarshalABI(f *testing.F) {
	in := fullInput()
	f.Add(in.MarshalABI(nil))
	f.Add((&Input{Route: "r"}).MarshalABI(nil))
	f.Add((&RetryDecision{Retry: true, DelayMs: 100, Reason: "x"}).MarshalABI(nil))
	f.Add((&FallbackDecision{Action: FallbackCache}).MarshalABI(nil))
	f.Add((&Stub{Payload: []byte("p"), Headers: map[string]string{"a": "b"}}).MarshalABI(nil))
	f.Add((&ClassifyDecision{Verdict: VerdictRetryable, Reason: "x"}).MarshalABI(nil))
	f.Add((&Input{Route: "r", Target: "t", ResponseStatus: -1, ResponseBody: []byte(`{"error":1}`)}).MarshalABI(nil))
	f.Add([]byte{0x0a, 0x80})
	f.Add([]byte{0x1b, 0x0c})
	f.Fuzz(func(t *testing.T, b []byte) {
		var in Input
		if err := in.UnmarshalABI(b); err == nil {
			// Whatever decodes must re-encode and decode to the same record.
			var again Input
			if err := again.UnmarshalABI(in.MarshalABI(nil)); err != nil {
				t.Fatalf("re-decoding a decoded Input: %v", err)
			}
			if !reflect.DeepEqual(normalize(again), normalize(in)) {
				t.Fatalf("Input not stable:\n%+v\n%+v", in, again)
			}
		} else if _, ok := err.(*DecodeError); !ok {
			t.Fatalf("Input error %T is not *DecodeError", err)
		}
		var rd RetryDecision
		if err := rd.UnmarshalABI(b); err == nil {
			var again RetryDecision
			if err := again.UnmarshalABI(rd.MarshalABI(nil)); err != nil || again != rd {
				t.Fatalf("RetryDecision not stable: %+v vs %+v (%v)", rd, again, err)
			}
		}
		var fd FallbackDecision
		if err := fd.UnmarshalABI(b); err == nil && !fd.Action.Valid() {
			t.Fatalf("decoded an invalid action %q without error", fd.Action)
		}
		var st Stub
		if err := st.UnmarshalABI(b); err == nil && st.Payload == nil {
			t.Fatalf("decoded a Stub with a nil payload")
		}
		var cd ClassifyDecision
		if err := cd.UnmarshalABI(b); err == nil {
			if !cd.Verdict.Valid() {
				t.Fatalf("decoded an invalid verdict %q without error", cd.Verdict)
			}
			var again ClassifyDecision
			if err := again.UnmarshalABI(cd.MarshalABI(nil)); err != nil || again != cd {
				t.Fatalf("ClassifyDecision not stable: %+v vs %+v (%v)", cd, again, err)
			}
		} else if _, ok := err.(*DecodeError); !ok {
			t.Fatalf("ClassifyDecision error %T is not *DecodeError", err)
		}
	})
}

func BenchmarkInputMarshal(b *testing.B) {
	in := fullInput()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = in.MarshalABI(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkInputUnmarshal(b *testing.B) {
	src := fullInput()
	enc := src.MarshalABI(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		var in Input
		if err := in.UnmarshalABI(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInputUnmarshalReuse(b *testing.B) {
	src := fullInput()
	enc := src.MarshalABI(nil)
	var in Input
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if err := in.UnmarshalABI(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUnmarshalABINoCopyAliases(t *testing.T) {
	b := (&Input{Route: "orders", Payload: []byte("body"), ResponseBody: []byte("answer")}).MarshalABI(nil)
	var in Input
	if err := in.UnmarshalABINoCopy(b); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("body"))
	if i < 0 || &in.Payload[0] != &b[i] {
		t.Fatalf("Payload does not point into the input buffer")
	}
	if cap(in.Payload) != len(in.Payload) {
		t.Errorf("Payload capacity %d > length %d: appending would overwrite the input", cap(in.Payload), len(in.Payload))
	}
	if j := bytes.Index(b, []byte("answer")); j < 0 || &in.ResponseBody[0] != &b[j] || cap(in.ResponseBody) != len(in.ResponseBody) {
		t.Errorf("ResponseBody does not point into the input buffer, or has spare capacity")
	}
	// UnmarshalABI, by contrast, does not alias.
	if err := in.UnmarshalABI(b); err != nil {
		t.Fatal(err)
	}
	if &in.Payload[0] == &b[i] {
		t.Errorf("UnmarshalABI aliased its input")
	}
}
