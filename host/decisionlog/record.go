package decisionlog

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// Stream and subjects of the records.
const (
	Stream        = topology.StreamDecisions
	SubjectPrefix = topology.DecisionsPrefix
)

// Subject is the subject of route's records.
func Subject(route string) string { return SubjectPrefix + route }

// Roles of the version that made a decision.
const (
	// RoleCurrent: the current version; its decision was acted on.
	RoleCurrent = "current"
	// RoleCanary: the canary, for its share of messages; acted on.
	RoleCanary = "canary"
	// RoleShadow: the shadow; recorded and compared, never acted on.
	RoleShadow = "shadow"
)

// Record is one recorded decision.
type Record struct {
	At        time.Time `json:"at"`
	Route     string    `json:"route"`
	Kind      string    `json:"kind"`
	MessageID string    `json:"message_id"`
	Module    string    `json:"module"`
	Version   string    `json:"version"`
	SHA256    string    `json:"sha256"`
	Role      string    `json:"role"`
	// Input is the input record the module was given, config included.
	Input *abi.Input `json:"input"`
	// Output is the module's decision (absent when the call failed).
	Output     json.RawMessage `json:"output,omitempty"`
	Fuel       int64           `json:"fuel"`
	WallTimeNs int64           `json:"wall_time_ns"`
	// Breach is the limit or rule a failed call broke (fuel, deadline,
	// memory, trap, bad_output, output_too_large, abi); Error is why
	// the call failed.
	Breach string `json:"breach,omitempty"`
	Error  string `json:"error,omitempty"`
	// For a shadow's record: what the current version decided on the same
	// input, its fuel, and whether the two decisions are the same.
	CurrentOutput json.RawMessage `json:"current_output,omitempty"`
	CurrentFuel   int64           `json:"current_fuel,omitempty"`
	Agree         *bool           `json:"agree,omitempty"`
	// Truncated says what was cut to fit the record in one message.
	Truncated string `json:"truncated,omitempty"`
}

// Marshal encodes rec within max bytes (0: no limit): when it is larger,
// the input's payload, response body and headers, then the outputs, are
// cut until it fits, and Truncated says what was cut. It fails only when
// even the cut record does not fit.
func Marshal(rec *Record, max int) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil || max <= 0 || len(b) <= max {
		return b, err
	}
	r := *rec
	var in abi.Input
	if rec.Input != nil {
		in = *rec.Input
	}
	r.Input = &in
	steps := []struct {
		what string
		cut  func()
	}{
		{"input.payload", func() { r.Input.Payload = nil }},
		{"input.response_body", func() { r.Input.ResponseBody = nil }},
		{"input.headers", func() { r.Input.Headers, r.Input.ResponseHeaders = nil, nil }},
		{"output", func() { r.Output, r.CurrentOutput = nil, nil }},
	}
	cut := ""
	for _, s := range steps {
		s.cut()
		if cut != "" {
			cut += ", "
		}
		cut += s.what
		r.Truncated = fmt.Sprintf("%s removed: the record was %d bytes, over the server's max_payload of %d", cut, len(b), max)
		out, err := json.Marshal(&r)
		if err != nil {
			return nil, err
		}
		if len(out) <= max {
			return out, nil
		}
	}
	return nil, fmt.Errorf("decision record of route %q is over max_payload (%d bytes) even without payloads", rec.Route, max)
}
