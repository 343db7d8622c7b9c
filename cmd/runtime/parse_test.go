package main

import (
	"errors"
	"fmt"
	"testing"
)

// TestExitCodes: outcomes and errors map to the documented exit codes.
func TestExitCodes(t *testing.T) {
	for outcome, code := range map[string]int{"ok": 0, "cached": 3, "stub": 4, "dead": 5, "error": 7, "weird": 1} {
		if got := exitCode(outcomeErr(outcome)); got != code {
			t.Errorf("outcome %s: exit %d, want %d", outcome, got, code)
		}
	}
	if exitCode(errors.New("x")) != 1 || exitCode(nil) != 0 || exitCode(fmt.Errorf("wrapped: %w", withCode(6, "late"))) != 6 {
		t.Error("plain, nil or wrapped errors map wrongly")
	}
}

// TestParseVersionAndHeaders: versions as v3 or 3; -H values.
func TestParseVersionAndHeaders(t *testing.T) {
	for in, want := range map[string]int{"": 0, "v3": 3, "3": 3, "V12": 12} {
		if got, err := parseVersion("--to", in); err != nil || got != want {
			t.Errorf("parseVersion(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"v", "x3", "-1", "v0", "3.1"} {
		if _, err := parseVersion("--to", bad); err == nil {
			t.Errorf("parseVersion(%q) accepted", bad)
		}
	}
	h, err := parseHeaders([]string{"X-A: 1", "x-b:2", "bw-reply-to: _INBOX.x", "BW-DEADLINE-MS:100", "X-A: again"})
	if err != nil || h.Get("X-A") != "1" || len(h["X-A"]) != 2 || h.Get("x-b") != "2" || h.Get("Bw-Reply-To") != "_INBOX.x" || h.Get("Bw-Deadline-Ms") != "100" {
		t.Fatalf("parseHeaders: %v %v", err, h)
	}
	for _, bad := range []string{"nocolon", ": v", "a b: v", "Nats-TTL: 1", "Bw-Outcome: ok", "nats-msg-id: x"} {
		if _, err := parseHeaders([]string{bad}); err == nil {
			t.Errorf("parseHeaders(%q) accepted", bad)
		}
	}
}
