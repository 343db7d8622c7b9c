package service_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/host/headers"
)

// TestHeadersBothWays (issue 13, item 3): a route's forward_headers copies
// the producer headers it allows to the HTTP target; the target's response
// headers come back on the outcome as response_headers allow (never the
// runtime's namespaces); Retry-After is honoured by the native retry.
func TestHeadersBothWays(t *testing.T) {
	var mu sync.Mutex
	got := map[string]http.Header{}
	calls := map[string]int{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Idempotency-Key")
		mu.Lock()
		got[id] = r.Header.Clone()
		calls[id]++
		n := calls[id]
		mu.Unlock()
		if id == "ra-1" && n == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream-Version", "7")
		w.Header().Set("X-Internal", "no")
		w.Header().Set("Bw-Outcome", "forged")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer up.Close()
	e := newEnv(t, "routes:"+routeYAML("hdr", up.URL, `    forward_headers: ['X-Tenant*', traceparent]
    response_headers: [Content-Type, 'X-Upstream-*', Bw-Outcome]
`))
	e.run()
	e.publish("hdr", "h-1", `{"id":"h-1"}`, "X-Tenant", "t1", "Authorization", "secret", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"Idempotency-Key", "forged", "x-tenant-extra", "e")
	m := e.outcome("h-1")
	mu.Lock()
	req := got["h-1"]
	mu.Unlock()
	if req.Get("X-Tenant") != "t1" || req.Get("X-Tenant-Extra") != "e" || req.Get("Traceparent") == "" || req.Get("Authorization") != "" ||
		len(req.Values("Idempotency-Key")) != 1 || req.Get("Idempotency-Key") != "h-1" || req.Get("Nats-Msg-Id") != "" {
		t.Errorf("the target received headers %v; want X-Tenant*, traceparent, its own Idempotency-Key once, no Authorization or Nats-", req)
	}
	if m.Header.Get("X-Upstream-Version") != "7" || m.Header.Get("Content-Type") != "application/json" || m.Header.Get("X-Internal") != "" {
		t.Errorf("outcome headers %v; want X-Upstream-Version and Content-Type only", m.Header)
	}
	if m.Header.Get(headers.Outcome) != headers.OutcomeOK {
		t.Errorf("a response header forged the outcome: %q", m.Header.Get(headers.Outcome))
	}

	e.publish("hdr", "ra-1", `{"id":"ra-1"}`)
	if m := e.outcome("ra-1"); m.Header.Get(headers.Outcome) != headers.OutcomeOK {
		t.Fatalf("ra-1: %v", m.Header)
	}
	line := e.logLine(`"msg":"retry scheduled"`, `"message_id":"ra-1"`)
	if !strings.Contains(line, "Retry-After honoured") || !strings.Contains(line, `"delay_ms":1000`) {
		t.Errorf("Retry-After: 1 was not honoured: %s", line)
	}
}

// TestNATSTargetForwarding: a NATS target gets every producer header by
// default (as before), and only the allowed ones with forward_headers.
func TestNATSTargetForwarding(t *testing.T) {
	e := newEnv(t, `routes:
  - name: all
    target:
      nats: {subject: svc.all}
  - name: some
    target:
      nats: {subject: svc.some}
    forward_headers: ['X-*']
`)
	var mu sync.Mutex
	got := map[string]nats.Header{}
	for _, subj := range []string{"svc.all", "svc.some"} {
		if _, err := e.nc.Subscribe(subj, func(m *nats.Msg) {
			mu.Lock()
			got[m.Subject] = m.Header
			mu.Unlock()
			_ = m.Respond([]byte("ok"))
		}); err != nil {
			t.Fatal(err)
		}
	}
	e.run()
	e.publish("all", "n-1", `{}`, "X-Tenant", "t1", "Authorization", "secret")
	e.publish("some", "n-2", `{}`, "X-Tenant", "t1", "Authorization", "secret")
	e.outcome("n-1")
	e.outcome("n-2")
	mu.Lock()
	defer mu.Unlock()
	if h := got["svc.all"]; h.Get("X-Tenant") != "t1" || h.Get("Authorization") != "secret" || h.Get("Nats-Msg-Id") != "" {
		t.Errorf("default forwarding: %v", h)
	}
	if h := got["svc.some"]; h.Get("X-Tenant") != "t1" || h.Get("Authorization") != "" {
		t.Errorf("forward_headers [X-*]: %v", h)
	}
}
