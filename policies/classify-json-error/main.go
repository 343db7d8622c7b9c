package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	sdk "github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/classify"
)

type settings struct {
	ErrorField      string  `json:"error_field"`
	SuccessStatuses []int32 `json:"success_statuses"`
	BodyErrors      string  `json:"body_errors"`

	bodyVerdict sdk.Verdict // BodyErrors, checked by validate
}

func (s *settings) validate() error {
	if s.ErrorField == "" {
		return errors.New("error_field must not be empty")
	}
	switch s.BodyErrors {
	case "", string(sdk.VerdictRetryable):
		s.bodyVerdict = sdk.VerdictRetryable
	case string(sdk.VerdictPermanent):
		s.bodyVerdict = sdk.VerdictPermanent
	default:
		return fmt.Errorf("body_errors must be %q or %q, not %q", sdk.VerdictRetryable, sdk.VerdictPermanent, s.BodyErrors)
	}
	for _, st := range s.SuccessStatuses {
		if st < 100 || st > 999 {
			return fmt.Errorf("success_statuses: %d is not an HTTP status", st)
		}
	}
	return nil
}

var config = sdk.Config[settings]{
	Defaults: settings{ErrorField: "error"},
	Validate: (*settings).validate,
}

func init() {
	classify.Handle(decide)
}

// maxSnippet bounds the part of the error field's value quoted in a reason.
const maxSnippet = 64

func decide(in *sdk.Input) sdk.ClassifyDecision {
	s := config.MustLoad(in.Config)
	status := in.ResponseStatus
	if status != 0 && slices.Contains(s.SuccessStatuses, status) {
		return sdk.ClassifyDecision{Verdict: sdk.VerdictSuccess, Reason: statusReason(status, " is listed in success_statuses")}
	}
	if status == 0 || (status >= 200 && status <= 299) {
		if reason, failed := bodyError(in.ResponseBody, s.ErrorField); failed {
			return sdk.ClassifyDecision{Verdict: s.bodyVerdict, Reason: reason}
		}
		if status == 0 {
			return sdk.ClassifyDecision{Verdict: sdk.VerdictSuccess, Reason: "no status, no error in the body"}
		}
		return sdk.ClassifyDecision{Verdict: sdk.VerdictSuccess, Reason: statusReason(status, "")}
	}
	switch {
	case status == 408, status == 429, status >= 500 && status <= 599:
		return sdk.ClassifyDecision{Verdict: sdk.VerdictRetryable, Reason: statusReason(status, "")}
	default:
		return sdk.ClassifyDecision{Verdict: sdk.VerdictPermanent, Reason: statusReason(status, " is not retryable")}
	}
}

// bodyError reports whether body is a JSON object whose field is set (not
// null, false, "", [] or {}), with a reason naming the field and quoting
// the start of its value.
func bodyError(body []byte, field string) (string, bool) {
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) == 0 || body[0] != '{' {
		return "", false // not a JSON object: nothing to look for (and cheap)
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return "", false
	}
	v, ok := obj[field]
	if !ok || empty(v) {
		return "", false
	}
	return "body field " + strconv.Quote(field) + ": " + snippet(v), true
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
