package abi

// This file implements the JSON form of the ABI records (docs/abi.md,
// "Inputs as JSON"): what `runtime module run` reads and prints, and what
// tools and tests write by hand. It is not the wire format (that is
// codec.go); the host never sends JSON to a module.
//
// The JSON form:
//   - field names are the wire field names of docs/abi.md (snake_case);
//   - Input.error is an object {attempt, at_unix_ms, kind, status, message};
//   - flags, headers, response_headers and a stub's headers are objects of
//     strings;
//   - the byte fields payload, response_body (Input) and payload (Stub) are
//     JSON strings holding the bytes as text; bytes that are not valid UTF-8
//     are written, and may be read, as payload_base64 / response_body_base64
//     (standard base64, with padding) instead;
//   - config is the module's config as a JSON value (an object), not a
//     string holding it;
//   - Marshal writes the required fields (route, retry, action, payload,
//     verdict) always and the others when they are not zero;
//   - Unmarshal rejects an unknown field, naming it (a typo must not pass
//     silently), a value of the wrong JSON type, and a missing required
//     field or an invalid value as UnmarshalABI does. Errors are
//     *DecodeError with Offset -1.
//
// AttemptError needs no methods: its struct tags give the JSON form, which
// stored dead-letter histories already use.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// ErrUnknownField is the error wrapped by a DecodeError from an
// UnmarshalJSON method reporting a field the record does not have.
var ErrUnknownField = errors.New("unknown field")

// inputJSONFields are the fields of the JSON form of Input, in wire order.
var inputJSONFields = []string{
	"route", "subject", "message_id", "attempt", "max_attempts", "elapsed_ms", "error",
	"breaker_state", "flags", "headers", "payload", "payload_base64", "config",
	"cache_available", "cache_age_ms", "deadline_ms", "response_headers", "retry_after_ms",
	"target", "response_status", "response_body", "response_body_base64",
}

var attemptErrorJSONFields = []string{"attempt", "at_unix_ms", "kind", "status", "message"}

// jsonWriter builds a JSON object field by field.
type jsonWriter struct {
	b   bytes.Buffer
	n   int
	err error
}

func (w *jsonWriter) field(name string, v any) {
	if w.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.err = fmt.Errorf("%s: %w", name, err)
		return
	}
	w.raw(name, b)
}

func (w *jsonWriter) raw(name string, v []byte) {
	if w.n == 0 {
		w.b.WriteByte('{')
	} else {
		w.b.WriteByte(',')
	}
	w.n++
	k, _ := json.Marshal(name)
	w.b.Write(k)
	w.b.WriteByte(':')
	w.b.Write(v)
}

// bytesField writes the byte field name as text, or as name_base64 when
// b is not valid UTF-8. always writes an empty b too.
func (w *jsonWriter) bytesField(name string, b []byte, always bool) {
	switch {
	case len(b) == 0 && !always:
	case utf8.Valid(b):
		w.field(name, string(b))
	default:
		w.field(name+"_base64", base64.StdEncoding.EncodeToString(b))
	}
}

func (w *jsonWriter) done() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.n == 0 {
		return []byte("{}"), nil
	}
	w.b.WriteByte('}')
	return w.b.Bytes(), nil
}

// jsonObject reads the JSON object b of record into its fields; null is an
// empty object.
func jsonObject(record string, b []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, &DecodeError{Record: record, Offset: -1, Reason: "want a JSON object: " + jsonReason(err), Err: err}
	}
	return m, nil
}

// sortedKeys returns the keys of m in a stable order, so that the first
// error reported does not depend on map iteration.
func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func unknownField(record, name string, known []string) error {
	return &DecodeError{Record: record, Field: name, Offset: -1,
		Reason: fmt.Sprintf("unknown field (the fields are %s)", strings.Join(known, ", ")), Err: ErrUnknownField}
}

// jsonReason shortens encoding/json's messages: "json: cannot unmarshal
// string into Go value of type uint32" says which Go type, not which field.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("a JSON %s cannot be read as %s", te.Value, jsonTypeName(te.Type.String()))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonTypeName(goType string) string {
	switch goType {
	case "uint32":
		return "an unsigned 32-bit integer"
	case "int32":
		return "a 32-bit integer"
	case "int64":
		return "a 64-bit integer"
	case "bool":
		return "true or false"
	case "string", "abi.ErrorKind", "abi.FallbackAction", "abi.Verdict":
		return "a string"
	case "map[string]string":
		return "an object of strings"
	}
	return goType
}

// decodeField decodes the value v of field name of record into dst.
func decodeField(record, name string, v json.RawMessage, dst any) error {
	if err := json.Unmarshal(v, dst); err != nil {
		return &DecodeError{Record: record, Field: name, Offset: -1, Reason: jsonReason(err), Err: err}
	}
	return nil
}

// decodeBytes decodes a byte field: text, or base64 when b64.
func decodeBytes(record, name string, v json.RawMessage, b64 bool) ([]byte, error) {
	var s *string
	if err := decodeField(record, name, v, &s); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, nil
	}
	if !b64 {
		return []byte(*s), nil
	}
	b, err := base64.StdEncoding.DecodeString(*s)
	if err != nil {
		return nil, &DecodeError{Record: record, Field: name, Offset: -1, Reason: "not standard base64: " + err.Error(), Err: err}
	}
	return b, nil
}

// twoForms refuses a byte field given both as text and as base64.
func twoForms(record, name string, m map[string]json.RawMessage) error {
	if _, ok := m[name]; ok {
		if _, ok := m[name+"_base64"]; ok {
			return &DecodeError{Record: record, Field: name, Offset: -1,
				Reason: fmt.Sprintf("given twice, as %s and %s_base64: use one", name, name), Err: ErrInvalidValue}
		}
	}
	return nil
}

// MarshalJSON implements json.Marshaler: the JSON form of the input (see
// docs/abi.md, "Inputs as JSON"). Config must hold valid JSON (or nothing).
func (x Input) MarshalJSON() ([]byte, error) {
	var w jsonWriter
	w.field("route", x.Route)
	if x.Subject != "" {
		w.field("subject", x.Subject)
	}
	if x.MessageID != "" {
		w.field("message_id", x.MessageID)
	}
	if x.Attempt != 0 {
		w.field("attempt", x.Attempt)
	}
	if x.MaxAttempts != 0 {
		w.field("max_attempts", x.MaxAttempts)
	}
	if x.ElapsedMs != 0 {
		w.field("elapsed_ms", x.ElapsedMs)
	}
	if x.Error != (AttemptError{}) {
		w.field("error", x.Error)
	}
	if x.BreakerState != "" {
		w.field("breaker_state", x.BreakerState)
	}
	if len(x.Flags) > 0 {
		w.field("flags", x.Flags)
	}
	if len(x.Headers) > 0 {
		w.field("headers", x.Headers)
	}
	w.bytesField("payload", x.Payload, false)
	if len(bytes.TrimSpace(x.Config)) > 0 {
		if !json.Valid(x.Config) {
			return nil, errors.New("abi: Input.config is not valid JSON")
		}
		var c bytes.Buffer
		_ = json.Compact(&c, x.Config)
		w.raw("config", c.Bytes())
	}
	if x.CacheAvailable {
		w.field("cache_available", true)
	}
	if x.CacheAgeMs != 0 {
		w.field("cache_age_ms", x.CacheAgeMs)
	}
	if x.DeadlineMs != 0 {
		w.field("deadline_ms", x.DeadlineMs)
	}
	if len(x.ResponseHeaders) > 0 {
		w.field("response_headers", x.ResponseHeaders)
	}
	if x.RetryAfterMs != 0 {
		w.field("retry_after_ms", x.RetryAfterMs)
	}
	if x.Target != "" {
		w.field("target", x.Target)
	}
	if x.ResponseStatus != 0 {
		w.field("response_status", x.ResponseStatus)
	}
	w.bytesField("response_body", x.ResponseBody, false)
	return w.done()
}

// UnmarshalJSON implements json.Unmarshaler: it reads the JSON form of an
// input (see docs/abi.md, "Inputs as JSON"), replacing x's contents. An
// unknown field, a value of the wrong type, a byte field given both as
// text and base64, a config that is not a JSON object, and a missing or
// empty route are errors (*DecodeError naming the field).
func (x *Input) UnmarshalJSON(b []byte) error {
	const rec = "Input"
	m, err := jsonObject(rec, b)
	if err != nil {
		return err
	}
	for _, name := range []string{"payload", "response_body"} {
		if err := twoForms(rec, name, m); err != nil {
			return err
		}
	}
	var in Input
	for _, k := range sortedKeys(m) {
		v := m[k]
		var err error
		switch k {
		case "route":
			err = decodeField(rec, k, v, &in.Route)
		case "subject":
			err = decodeField(rec, k, v, &in.Subject)
		case "message_id":
			err = decodeField(rec, k, v, &in.MessageID)
		case "attempt":
			err = decodeField(rec, k, v, &in.Attempt)
		case "max_attempts":
			err = decodeField(rec, k, v, &in.MaxAttempts)
		case "elapsed_ms":
			err = decodeField(rec, k, v, &in.ElapsedMs)
		case "error":
			err = in.Error.unmarshalJSON(v)
		case "breaker_state":
			err = decodeField(rec, k, v, &in.BreakerState)
		case "flags":
			err = decodeField(rec, k, v, &in.Flags)
		case "headers":
			err = decodeField(rec, k, v, &in.Headers)
		case "payload", "payload_base64":
			in.Payload, err = decodeBytes(rec, k, v, k == "payload_base64")
		case "config":
			in.Config, err = decodeConfig(v)
		case "cache_available":
			err = decodeField(rec, k, v, &in.CacheAvailable)
		case "cache_age_ms":
			err = decodeField(rec, k, v, &in.CacheAgeMs)
		case "deadline_ms":
			err = decodeField(rec, k, v, &in.DeadlineMs)
		case "response_headers":
			err = decodeField(rec, k, v, &in.ResponseHeaders)
		case "retry_after_ms":
			err = decodeField(rec, k, v, &in.RetryAfterMs)
		case "target":
			err = decodeField(rec, k, v, &in.Target)
		case "response_status":
			err = decodeField(rec, k, v, &in.ResponseStatus)
		case "response_body", "response_body_base64":
			in.ResponseBody, err = decodeBytes(rec, k, v, k == "response_body_base64")
		default:
			err = unknownField(rec, k, inputJSONFields)
		}
		if err != nil {
			return err
		}
	}
	if _, ok := m["route"]; !ok {
		return missing(rec, "route")
	}
	if in.Route == "" {
		return &DecodeError{Record: rec, Field: "route", Offset: -1, Reason: "must not be empty", Err: ErrInvalidValue}
	}
	*x = in
	return nil
}

// decodeConfig reads Input.config: a JSON object, kept as written
// (compacted); null is no config.
func decodeConfig(v json.RawMessage) ([]byte, error) {
	t := bytes.TrimSpace(v)
	switch {
	case bytes.Equal(t, []byte("null")):
		return nil, nil
	case len(t) > 0 && t[0] == '{':
		var c bytes.Buffer
		if err := json.Compact(&c, t); err != nil {
			return nil, &DecodeError{Record: "Input", Field: "config", Offset: -1, Reason: jsonReason(err), Err: err}
		}
		return c.Bytes(), nil
	case len(t) > 0 && t[0] == '"':
		return nil, &DecodeError{Record: "Input", Field: "config", Offset: -1,
			Reason: `want the module's config as a JSON object, not a string holding it: write "config": {...}`, Err: ErrInvalidValue}
	}
	return nil, &DecodeError{Record: "Input", Field: "config", Offset: -1, Reason: "want a JSON object (the module's config)", Err: ErrInvalidValue}
}

// unmarshalJSON reads the JSON form of Input.error; unknown fields are
// errors. null is no error.
func (x *AttemptError) unmarshalJSON(v json.RawMessage) error {
	const rec = "Input.error"
	m, err := jsonObject(rec, v)
	if err != nil {
		return err
	}
	var e AttemptError
	for _, k := range sortedKeys(m) {
		var err error
		switch k {
		case "attempt":
			err = decodeField(rec, k, m[k], &e.Attempt)
		case "at_unix_ms":
			err = decodeField(rec, k, m[k], &e.AtUnixMs)
		case "kind":
			err = decodeField(rec, k, m[k], &e.Kind)
		case "status":
			err = decodeField(rec, k, m[k], &e.Status)
		case "message":
			err = decodeField(rec, k, m[k], &e.Message)
		default:
			err = unknownField(rec, k, attemptErrorJSONFields)
		}
		if err != nil {
			return err
		}
	}
	*x = e
	return nil
}

// outputFields decodes the JSON object b of an output record: each field
// of fields is decoded into its destination; any other is an error.
func outputFields(record string, b []byte, fields map[string]any, order []string) (map[string]json.RawMessage, error) {
	m, err := jsonObject(record, b)
	if err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(m) {
		dst, ok := fields[k]
		if !ok {
			return nil, unknownField(record, k, order)
		}
		if dst == nil {
			continue // decoded by the caller
		}
		if err := decodeField(record, k, m[k], dst); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// MarshalJSON implements json.Marshaler: {"retry", "delay_ms", "reason"}.
// retry and delay_ms are always written.
func (x RetryDecision) MarshalJSON() ([]byte, error) {
	var w jsonWriter
	w.field("retry", x.Retry)
	w.field("delay_ms", x.DelayMs)
	if x.Reason != "" {
		w.field("reason", x.Reason)
	}
	return w.done()
}

// UnmarshalJSON implements json.Unmarshaler. retry is required; unknown
// fields are errors.
func (x *RetryDecision) UnmarshalJSON(b []byte) error {
	var d RetryDecision
	m, err := outputFields("RetryDecision", b, map[string]any{"retry": &d.Retry, "delay_ms": &d.DelayMs, "reason": &d.Reason},
		[]string{"retry", "delay_ms", "reason"})
	if err != nil {
		return err
	}
	if _, ok := m["retry"]; !ok {
		return missing("RetryDecision", "retry")
	}
	*x = d
	return nil
}

// MarshalJSON implements json.Marshaler: {"action", "reason"}.
func (x FallbackDecision) MarshalJSON() ([]byte, error) {
	var w jsonWriter
	w.field("action", x.Action)
	if x.Reason != "" {
		w.field("reason", x.Reason)
	}
	return w.done()
}

// UnmarshalJSON implements json.Unmarshaler. action is required and must
// be one of the actions of ABI v1; unknown fields are errors.
func (x *FallbackDecision) UnmarshalJSON(b []byte) error {
	var d FallbackDecision
	m, err := outputFields("FallbackDecision", b, map[string]any{"action": &d.Action, "reason": &d.Reason}, []string{"action", "reason"})
	if err != nil {
		return err
	}
	if _, ok := m["action"]; !ok {
		return missing("FallbackDecision", "action")
	}
	if !d.Action.Valid() {
		return &DecodeError{Record: "FallbackDecision", Field: "action", Offset: -1,
			Reason: fmt.Sprintf("unknown action %q (want cache, stub, dead_letter or fail)", d.Action), Err: ErrInvalidValue}
	}
	*x = d
	return nil
}

// MarshalJSON implements json.Marshaler: {"verdict", "reason"}.
func (x ClassifyDecision) MarshalJSON() ([]byte, error) {
	var w jsonWriter
	w.field("verdict", x.Verdict)
	if x.Reason != "" {
		w.field("reason", x.Reason)
	}
	return w.done()
}

// UnmarshalJSON implements json.Unmarshaler. verdict is required and must
// be one of the verdicts of ABI v1; unknown fields are errors.
func (x *ClassifyDecision) UnmarshalJSON(b []byte) error {
	var d ClassifyDecision
	m, err := outputFields("ClassifyDecision", b, map[string]any{"verdict": &d.Verdict, "reason": &d.Reason}, []string{"verdict", "reason"})
	if err != nil {
		return err
	}
	if _, ok := m["verdict"]; !ok {
		return missing("ClassifyDecision", "verdict")
	}
	if !d.Verdict.Valid() {
		return &DecodeError{Record: "ClassifyDecision", Field: "verdict", Offset: -1,
			Reason: fmt.Sprintf("unknown verdict %q (want success, retryable or permanent)", d.Verdict), Err: ErrInvalidValue}
	}
	*x = d
	return nil
}

// MarshalJSON implements json.Marshaler: {"payload" or "payload_base64",
// "headers"}. The payload is always written, as text when it is valid
// UTF-8, else in base64 under payload_base64.
func (x Stub) MarshalJSON() ([]byte, error) {
	var w jsonWriter
	w.bytesField("payload", x.Payload, true)
	if len(x.Headers) > 0 {
		w.field("headers", x.Headers)
	}
	return w.done()
}

// UnmarshalJSON implements json.Unmarshaler. payload (or payload_base64)
// is required; unknown fields are errors.
func (x *Stub) UnmarshalJSON(b []byte) error {
	const rec = "Stub"
	var d Stub
	m, err := outputFields(rec, b, map[string]any{"payload": nil, "payload_base64": nil, "headers": &d.Headers},
		[]string{"payload", "payload_base64", "headers"})
	if err != nil {
		return err
	}
	if err := twoForms(rec, "payload", m); err != nil {
		return err
	}
	switch {
	case m["payload"] != nil:
		d.Payload, err = decodeBytes(rec, "payload", m["payload"], false)
	case m["payload_base64"] != nil:
		d.Payload, err = decodeBytes(rec, "payload_base64", m["payload_base64"], true)
	default:
		return missing(rec, "payload")
	}
	if err != nil {
		return err
	}
	*x = d
	return nil
}
