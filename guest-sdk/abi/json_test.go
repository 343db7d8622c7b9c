package abi

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// jsonNormalize makes empty byte slices and maps nil, so that a field the
// JSON form omits compares equal to an empty one.
func jsonNormalize(in Input) Input {
	if len(in.Payload) == 0 {
		in.Payload = nil
	}
	if len(in.Config) == 0 {
		in.Config = nil
	}
	if len(in.ResponseBody) == 0 {
		in.ResponseBody = nil
	}
	if len(in.Flags) == 0 {
		in.Flags = nil
	}
	if len(in.Headers) == 0 {
		in.Headers = nil
	}
	if len(in.ResponseHeaders) == 0 {
		in.ResponseHeaders = nil
	}
	return in
}

func TestInputJSONRoundTrip(t *testing.T) {
	full := Input{
		Route: "orders", Subject: "bw.in.orders", MessageID: "m-1", Attempt: 2, MaxAttempts: 5, ElapsedMs: 1200,
		Error:        AttemptError{Attempt: 2, AtUnixMs: 1_700_000_000_000, Kind: ErrorStatus, Status: 503, Message: "answered 503"},
		BreakerState: "half_open", Flags: map[string]string{"orders.fast": "true"}, Headers: map[string]string{"X-Tenant": "acme"},
		Payload: []byte(`{"id":1}`), Config: []byte(`{"base_ms":100,"nested":{"a":[1,2]}}`), CacheAvailable: true, CacheAgeMs: 30,
		DeadlineMs: 900, ResponseHeaders: map[string]string{"Content-Type": "application/json"}, RetryAfterMs: 2000,
		Target: "orders-api", ResponseStatus: 200, ResponseBody: []byte(`{"error":"busy"}`),
	}
	tests := []struct {
		name string
		in   Input
		want []string // fragments of the JSON
		not  []string // what it must not contain
	}{
		{"full", full, []string{`"route":"orders"`, `"error":{"attempt":2,"at_unix_ms":1700000000000,"kind":"status","status":503,"message":"answered 503"}`,
			`"payload":"{\"id\":1}"`, `"config":{"base_ms":100,"nested":{"a":[1,2]}}`, `"response_body":"{\"error\":\"busy\"}"`, `"cache_available":true`}, []string{"_base64"}},
		{"minimal", Input{Route: "r"}, []string{`{"route":"r"}`}, []string{"error", "payload", "config"}},
		{"binary payload", Input{Route: "r", Payload: []byte{0xff, 0x00, 0x80}}, []string{`"payload_base64":"/wCA"`}, []string{`"payload":`}},
		{"binary response body", Input{Route: "r", ResponseBody: []byte{0xc3}}, []string{`"response_body_base64":"ww=="`}, []string{`"response_body":`}},
		{"unicode payload", Input{Route: "r", Payload: []byte("héllo\n")}, []string{`"payload":"héllo\n"`}, nil},
		{"negative numbers", Input{Route: "r", ElapsedMs: -1, ResponseStatus: -2, Error: AttemptError{Status: -3}}, []string{`"elapsed_ms":-1`, `"response_status":-2`, `"status":-3`}, nil},
		{"config spaces compacted", Input{Route: "r", Config: []byte(" { \"a\" : 1 } ")}, []string{`"config":{"a":1}`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			s := string(b)
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("JSON lacks %s:\n%s", w, s)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(s, w) {
					t.Errorf("JSON has %s:\n%s", w, s)
				}
			}
			var got Input
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("unmarshal %s: %v", s, err)
			}
			want := tt.in
			if len(want.Config) > 0 {
				want.Config = []byte(strings.NewReplacer(" ", "").Replace(string(want.Config)))
			}
			if !reflect.DeepEqual(jsonNormalize(got), jsonNormalize(want)) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
			}
			// The record survives the wire codec too.
			var wire Input
			if err := wire.UnmarshalABI(got.MarshalABI(nil)); err != nil || !reflect.DeepEqual(jsonNormalize(wire), jsonNormalize(want)) {
				t.Errorf("ABI round trip: %v\n got %+v", err, wire)
			}
		})
	}
}

func TestInputJSONErrors(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		field string // DecodeError.Field
		is    error
		frag  string // fragment of the message
	}{
		{"unknown field", `{"route":"r","atempt":2}`, "atempt", ErrUnknownField, "unknown field (the fields are route, subject"},
		{"unknown error field", `{"route":"r","error":{"kind":"timeout","code":3}}`, "code", ErrUnknownField, "Input.error.code"},
		{"wrong type", `{"route":"r","attempt":"2"}`, "attempt", nil, "a JSON string cannot be read as an unsigned 32-bit integer"},
		{"negative attempt", `{"route":"r","attempt":-1}`, "attempt", nil, "unsigned"},
		{"status too large", `{"route":"r","error":{"status":99999999999}}`, "status", nil, "32-bit"},
		{"headers not strings", `{"route":"r","headers":{"a":1}}`, "headers", nil, "headers"},
		{"config as a string", `{"route":"r","config":"{\"a\":1}"}`, "config", ErrInvalidValue, "not a string holding it"},
		{"config as a number", `{"route":"r","config":3}`, "config", ErrInvalidValue, "JSON object"},
		{"payload twice", `{"route":"r","payload":"a","payload_base64":"YQ=="}`, "payload", ErrInvalidValue, "given twice"},
		{"bad base64", `{"route":"r","response_body_base64":"!!"}`, "response_body_base64", nil, "base64"},
		{"missing route", `{"subject":"s"}`, "route", ErrMissingField, "required"},
		{"empty route", `{"route":""}`, "route", ErrInvalidValue, "must not be empty"},
		{"not an object", `[1]`, "", nil, "want a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in Input
			err := json.Unmarshal([]byte(tt.json), &in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T), want a *DecodeError", err, err)
			}
			if de.Field != tt.field {
				t.Errorf("field %q, want %q (%v)", de.Field, tt.field, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.frag) {
				t.Errorf("error %q lacks %q", err, tt.frag)
			}
		})
	}
}

func TestInputJSONNulls(t *testing.T) {
	var in Input
	if err := json.Unmarshal([]byte(`{"route":"r","error":null,"config":null,"payload":null,"headers":null}`), &in); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(jsonNormalize(in), Input{Route: "r"}) {
		t.Fatalf("%+v", in)
	}
}

func TestOutputJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		v    any // a pointer to a record
		json string
	}{
		{"retry", &RetryDecision{Retry: true, DelayMs: 250, Reason: "backoff"}, `{"retry":true,"delay_ms":250,"reason":"backoff"}`},
		{"retry false", &RetryDecision{}, `{"retry":false,"delay_ms":0}`},
		{"fallback", &FallbackDecision{Action: FallbackDeadLetter, Reason: "no cache"}, `{"action":"dead_letter","reason":"no cache"}`},
		{"classify", &ClassifyDecision{Verdict: VerdictRetryable}, `{"verdict":"retryable"}`},
		{"stub", &Stub{Payload: []byte(`{"ok":true}`), Headers: map[string]string{"X-Stub": "true"}}, `{"payload":"{\"ok\":true}","headers":{"X-Stub":"true"}}`},
		{"stub empty", &Stub{Payload: []byte{}}, `{"payload":""}`},
		{"stub binary", &Stub{Payload: []byte{0xfe, 0xff}}, `{"payload_base64":"/v8="}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil || string(b) != tt.json {
				t.Fatalf("marshal: %s %v, want %s", b, err, tt.json)
			}
			got := reflect.New(reflect.TypeOf(tt.v).Elem()).Interface()
			if err := json.Unmarshal(b, got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.v) {
				t.Fatalf("got %+v, want %+v", got, tt.v)
			}
		})
	}
}

func TestOutputJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		v    any
		json string
		is   error
		frag string
	}{
		{"retry missing", &RetryDecision{}, `{"delay_ms":3}`, ErrMissingField, "RetryDecision.retry"},
		{"retry unknown", &RetryDecision{}, `{"retry":true,"delay":3}`, ErrUnknownField, "RetryDecision.delay"},
		{"fallback bad action", &FallbackDecision{}, `{"action":"drop"}`, ErrInvalidValue, "unknown action"},
		{"classify missing", &ClassifyDecision{}, `{"reason":"x"}`, ErrMissingField, "verdict"},
		{"classify bad verdict", &ClassifyDecision{}, `{"verdict":"ok"}`, ErrInvalidValue, "unknown verdict"},
		{"stub missing", &Stub{}, `{"headers":{}}`, ErrMissingField, "Stub.payload"},
		{"stub twice", &Stub{}, `{"payload":"","payload_base64":""}`, ErrInvalidValue, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := json.Unmarshal([]byte(tt.json), tt.v)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.frag) {
				t.Fatalf("error %v, want %v containing %q", err, tt.is, tt.frag)
			}
		})
	}
}
