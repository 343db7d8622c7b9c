package decisionlog_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
)

// TestMarshalTruncates: a record over the limit loses its payloads, in
// order, until it fits, and says what was cut; the caller's record is
// left whole.
func TestMarshalTruncates(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4000)
	rec := func() *decisionlog.Record {
		return &decisionlog.Record{Route: "orders", Kind: "retry", Module: "policy", Version: "v2", Role: decisionlog.RoleCurrent,
			Input:  &abi.Input{Route: "orders", MessageID: "m-1", Payload: big, ResponseBody: big, Headers: map[string]string{"H": string(big)}},
			Output: json.RawMessage(`{"retry":true,"delay_ms":5}`)}
	}
	tests := []struct {
		name      string
		max       int
		truncated string // "" = whole
		fails     bool
	}{
		{"fits", 0, "", false},
		{"payload cut", 9000, "input.payload removed", false},
		{"payload and body cut", 5000, "input.payload, input.response_body removed", false},
		{"headers cut too", 1000, "input.payload, input.response_body, input.headers removed", false},
		{"nothing fits", 100, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rec()
			b, err := decisionlog.Marshal(r, tc.max)
			if tc.fails {
				if err == nil || !strings.Contains(err.Error(), "max_payload") {
					t.Fatalf("want an error naming max_payload, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.max > 0 && len(b) > tc.max {
				t.Fatalf("%d bytes over the limit of %d", len(b), tc.max)
			}
			var got decisionlog.Record
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if tc.truncated == "" && got.Truncated != "" || !strings.HasPrefix(got.Truncated, tc.truncated) {
				t.Fatalf("truncated %q, want prefix %q", got.Truncated, tc.truncated)
			}
			if tc.truncated != "" && !strings.Contains(got.Truncated, "max_payload") {
				t.Fatalf("truncated note does not say why: %q", got.Truncated)
			}
			if got.Input == nil || got.Input.MessageID != "m-1" || string(got.Output) == "" {
				t.Fatalf("the record lost what identifies it: %+v", got)
			}
			if len(r.Input.Payload) != len(big) || r.Truncated != "" {
				t.Fatal("the caller's record was changed")
			}
		})
	}
}
