package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/classify"
)

type settings struct {
	ErrorField      string  `json:"error_field"`
	SuccessStatuses []int32 `json:"success_statuses"`
	BodyErrors      string  `json:"body_errors"`

	bodyVerdict guest.Verdict // BodyErrors, checked by validate
}

func (s *settings) validate() error {
	if s.ErrorField == "" {
		return errors.New("error_field must not be empty")
	}
	switch s.BodyErrors {
	case "", string(guest.VerdictRetryable):
		s.bodyVerdict = guest.VerdictRetryable
	case string(guest.VerdictPermanent):
		s.bodyVerdict = guest.VerdictPermanent
	default:
		return fmt.Errorf("body_errors must be %q or %q, not %q", guest.VerdictRetryable, guest.VerdictPermanent, s.BodyErrors)
	}
	for _, st := range s.SuccessStatuses {
		if st < 100 || st > 999 {
			return fmt.Errorf("success_statuses: %d is not an HTTP status", st)
		}
	}
	return nil
}

var config = guest.Config[settings]{
	Defaults: settings{ErrorField: "error"},
	Validate: (*settings).validate,
}

func init() {
	classify.Handle(decide)
}

// maxSnippet bounds the part of the error field's value quoted in a reason.
const maxSnippet = 64

func decide(in *guest.Input) guest.ClassifyDecision {
	s := config.MustLoad(in.Config)
	status := in.ResponseStatus
	if status != 0 && slices.Contains(s.SuccessStatuses, status) {
		return guest.ClassifyDecision{Verdict: guest.VerdictSuccess, Reason: statusReason(status, " is listed in success_statuses")}
	}
	if status == 0 || (status >= 200 && status <= 299) {
		if reason, failed := bodyError(in.ResponseBody, s.ErrorField); failed {
			return guest.ClassifyDecision{Verdict: s.bodyVerdict, Reason: reason}
		}
		if status == 0 {
			return guest.ClassifyDecision{Verdict: guest.VerdictSuccess, Reason: "no status, no error in the body"}
		}
		return guest.ClassifyDecision{Verdict: guest.VerdictSuccess, Reason: statusReason(status, "")}
	}
	switch {
	case status == 408, status == 429, status >= 500 && status <= 599:
		return guest.ClassifyDecision{Verdict: guest.VerdictRetryable, Reason: statusReason(status, "")}
	default:
		return guest.ClassifyDecision{Verdict: guest.VerdictPermanent, Reason: statusReason(status, " is not retryable")}
	}
}

// bodyError reports whether body is a JSON object whose field is set (not
// null, false, "", [] or {}), with a reason naming the field and quoting
// the start of its value. It runs on every answer, so it scans the object
// for the field instead of decoding it (decoding into a map costs several
// times more in a Go guest); only a body that names the field is checked
// in full with json.Valid, so an invalid body never counts as an error.
func bodyError(body []byte, field string) (string, bool) {
	v, ok := topLevelField(body, field)
	if !ok || empty(v) || !json.Valid(body) {
		return "", false
	}
	return "body field " + strconv.Quote(field) + ": " + snippet(v), true
}

// topLevelField returns the raw value of the last member named field of the
// JSON object body (as encoding/json into a map would keep), or false when
// body is not an object or has no such member. It does not validate body.
func topLevelField(body []byte, field string) (json.RawMessage, bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	i++
	var found json.RawMessage
	ok := false
	for {
		i = skipSpace(body, i)
		if i >= len(body) || body[i] != '"' {
			return found, ok // '}' or not JSON: what was found so far
		}
		end := skipString(body, i)
		if end < 0 {
			return found, ok
		}
		key := body[i+1 : end-1]
		i = skipSpace(body, end)
		if i >= len(body) || body[i] != ':' {
			return found, ok
		}
		i = skipSpace(body, i+1)
		vEnd := skipValue(body, i)
		if vEnd < 0 {
			return found, ok
		}
		if keyEquals(key, field) {
			found, ok = body[i:vEnd], true
		}
		i = skipSpace(body, vEnd)
		if i >= len(body) || body[i] != ',' {
			return found, ok
		}
		i++
	}
}

// keyEquals compares a raw (still escaped) key with name.
func keyEquals(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name
	}
	var k string
	if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &k) != nil {
		return false
	}
	return k == name
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"'),
// or -1 when it does not end.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index after the value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				if j = skipString(b, j); j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\r' && b[j] != '\n' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// empty reports whether a JSON value (as encoding/json hands it over: no
// surrounding white space) is null, false, "", [] or {}.
func empty(v json.RawMessage) bool {
	switch string(v) {
	case "null", "false", `""`:
		return true
	}
	if len(v) >= 2 && (v[0] == '[' || v[0] == '{') {
		return len(bytes.TrimSpace(v[1:len(v)-1])) == 0
	}
	return false
}

// snippet is v compacted, cut to maxSnippet bytes on a character boundary.
func snippet(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		b.Reset()
		b.Write(v)
	}
	out := b.Bytes()
	if len(out) <= maxSnippet {
		return string(out)
	}
	cut := maxSnippet
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return string(out[:cut]) + "…"
}

// reasons caches the reasons naming a status: formatting one per call would
// cost an allocation, the dearest thing in a Go guest.
var reasons = map[reasonKey]string{}

type reasonKey struct {
	status int32
	suffix string
}

func statusReason(status int32, suffix string) string {
	key := reasonKey{status, suffix}
	if r, ok := reasons[key]; ok {
		return r
	}
	r := "status " + strconv.Itoa(int(status)) + suffix
	if len(reasons) < 1024 {
		reasons[key] = r
	}
	return r
}

// main is required by package main; a reactor module never runs it.
func main() {}
