package target

import (
	"net/http"
	"testing"
	"time"
)

func TestHeaderFilter(t *testing.T) {
	f, err := NewHeaderFilter([]string{"X-*", "traceparent"})
	if err != nil {
		t.Fatal(err)
	}
	// The trace context is the runtime's to write (it injects its own),
	// and Nats-/Bw- headers are the runtime's: neither ever passes.
	for name, want := range map[string]bool{"X-Tenant": true, "x-anything": true, "Traceparent": false, "Authorization": false, "Content-Type": false} {
		if f.Pass(name) != want {
			t.Errorf("Pass(%q) = %v, want %v", name, !want, want)
		}
	}
	var none *HeaderFilter
	if none.Pass("X-Tenant") || !AllHeaders.Pass("Anything") {
		t.Error("nil filter passes, or AllHeaders does not")
	}
	for _, name := range []string{"Nats-Msg-Id", "nats-expected-stream", "Bw-Reply-To", "traceparent", "TraceState"} {
		if AllHeaders.Pass(name) {
			t.Errorf("AllHeaders passes %q", name)
		}
	}
	if _, err := NewHeaderFilter([]string{"X-["}); err == nil {
		t.Error("a bad pattern was accepted")
	}
	got := f.Select(map[string][]string{"X-A": {"1", "2"}, "Other": {"3"}})
	if len(got) != 1 || got["X-A"] != "1" {
		t.Errorf("Select = %v", got)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":   0,
		"2":  2 * time.Second,
		"-1": 0,
		"0":  0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
		"soon":      0,
		"999999999": 24 * time.Hour,
	} {
		if got := RetryAfter(v, now); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}
