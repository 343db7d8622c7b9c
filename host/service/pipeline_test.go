package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

func always(status int) func(string, int) int { return func(string, int) int { return status } }

func routeYAML(name, url string, extra string) string {
	return fmt.Sprintf(`
  - name: %s
    target:
      http:
        method: POST
        url: %s
    timeout: 1s
    max_attempts: 3
    backoff:
      initial: 10ms
      max: 50ms
      multiplier: 2
      jitter: 0.2
    cache:
      key: '{{.payload.id}}'
      ttl: 1h
%s`, name, url, extra)
}

func TestOutcomes(t *testing.T) {
	up := newUpstream(t, func(id string, call int) int {
		switch {
		case strings.HasPrefix(id, "flaky") && call <= 2:
			return 503
		case strings.HasPrefix(id, "down"):
			return 500
		case strings.HasPrefix(id, "notfound"):
			return 404
		}
		return 200
	})
	e := newEnv(t, "routes:"+routeYAML("orders", up.URL, ""))
	e.run()

	tests := []struct {
		name         string
		id           string
		payload      string
		wantOutcome  string
		wantAttempts string
		wantCalls    int
		wantKind     abi.ErrorKind
	}{
		{"success", "ok-1", `{"id":"ok-1"}`, headers.OutcomeOK, "1", 1, ""},
		{"retry then success", "flaky-1", `{"id":"flaky-1"}`, headers.OutcomeOK, "3", 3, ""},
		{"exhaustion to dead letter", "down-1", `{"id":"down-1"}`, headers.OutcomeDead, "3", 3, abi.ErrorStatus},
		{"4xx is not retried", "notfound-1", `{"id":"notfound-1"}`, headers.OutcomeDead, "1", 1, abi.ErrorStatus},
		{"payload the cache key cannot read", "bad-1", `not json`, headers.OutcomeDead, "0", 0, abi.ErrorBadInput},
	}
	for _, tc := range tests {
		e.publish("orders", tc.id, tc.payload)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := e.outcome(tc.id)
			if got := m.Header.Get(headers.Outcome); got != tc.wantOutcome {
				t.Fatalf("outcome %q, want %q (error %q)", got, tc.wantOutcome, m.Header.Get(headers.Error))
			}
			if got := m.Header.Get(headers.Attempts); got != tc.wantAttempts {
				t.Errorf("attempts header %q, want %q", got, tc.wantAttempts)
			}
			if got := up.callsOf(tc.id); got != tc.wantCalls && tc.wantKind != abi.ErrorBadInput {
				t.Errorf("upstream called %d times, want %d", got, tc.wantCalls)
			}
			if m.Subject != "bw.out.orders" {
				t.Errorf("outcome on %s", m.Subject)
			}
			if tc.wantOutcome == headers.OutcomeOK {
				var body struct{ ID, IdempotencyKey string }
				_ = json.Unmarshal(m.Data, &body)
				if !strings.Contains(string(m.Data), `"idempotency_key":"`+tc.id+`"`) {
					t.Errorf("result %s: want the target's body with Idempotency-Key %s", m.Data, tc.id)
				}
				return
			}
			if got := abi.ErrorKind(m.Header.Get(headers.ErrorKind)); got != tc.wantKind {
				t.Errorf("error kind %q, want %q", got, tc.wantKind)
			}
			rec, err := deadletter.Unmarshal(m.Data)
			if err != nil {
				t.Fatalf("dead outcome body: %v", err)
			}
			wantErrs := max(tc.wantCalls, 1)
			if len(rec.Errors) != wantErrs {
				t.Fatalf("dead letter holds %d errors, want %d: %+v", len(rec.Errors), wantErrs, rec.Errors)
			}
			for i, ae := range rec.Errors {
				if ae.Kind != tc.wantKind || ae.AtUnixMs == 0 || ae.Message == "" {
					t.Errorf("error %d incomplete: %+v", i, ae)
				}
				if tc.wantKind == abi.ErrorStatus && ae.Status == 0 {
					t.Errorf("error %d lacks the status: %+v", i, ae)
				}
			}
			if string(rec.Payload) != tc.payload {
				t.Errorf("dead letter payload %q, want %q", rec.Payload, tc.payload)
			}
			if line := e.logLine(`"msg":"outcome"`, `"message_id":"`+tc.id+`"`, `"outcome":"dead"`, `"route":"orders"`, `"duration_ms"`, `"error_kind"`); line == "" {
				t.Errorf("no terminal log line with route, message id, outcome, duration and error for %s", tc.id)
			}
		})
	}

	// Every dead outcome reaches bw.dlq.orders too (just after bw.out).
	if parked := e.deadLetters("orders", 3); len(parked) != 3 {
		t.Fatalf("%d dead letters, want 3", len(parked))
	}
}

func TestExhaustionServesFreshCache(t *testing.T) {
	up := newUpstream(t, always(200))
	e := newEnv(t, "routes:"+routeYAML("prices", up.URL, ""))
	e.run()
	e.publish("prices", "p-1", `{"id":"sku-9"}`)
	good := e.outcome("p-1")
	if good.Header.Get(headers.Outcome) != headers.OutcomeOK {
		t.Fatalf("first call: %q", good.Header.Get(headers.Outcome))
	}
	up.setFail(always(503))
	e.publish("prices", "p-2", `{"id":"sku-9"}`)
	m := e.outcome("p-2")
	if got := m.Header.Get(headers.Outcome); got != headers.OutcomeCached {
		t.Fatalf("outcome %q, want cached", got)
	}
	if string(m.Data) != string(good.Data) {
		t.Errorf("cached value %s, want the last good %s", m.Data, good.Data)
	}
	if m.Header.Get(headers.CacheAge) == "" || m.Header.Get(headers.Attempts) != "3" {
		t.Errorf("headers %v: want cache age and 3 attempts", m.Header)
	}
	// A different key has nothing cached: dead letter.
	e.publish("prices", "p-3", `{"id":"sku-10"}`)
	if got := e.outcome("p-3").Header.Get(headers.Outcome); got != headers.OutcomeDead {
		t.Fatalf("uncached key: outcome %q, want dead", got)
	}
}

func TestStaticStubFallback(t *testing.T) {
	up := newUpstream(t, always(502))
	e := newEnv(t, "routes:"+routeYAML("catalog", up.URL, `    stub:
      payload: '{"status":"temporarily unavailable","price":0}'
      headers:
        X-Stub: "true"
`))
	e.run()
	e.publish("catalog", "c-1", `{"id":"c-1"}`)
	m := e.outcome("c-1")
	if got := m.Header.Get(headers.Outcome); got != headers.OutcomeStub {
		t.Fatalf("outcome %q, want stub", got)
	}
	if string(m.Data) != `{"status":"temporarily unavailable","price":0}` || m.Header.Get("X-Stub") != "true" {
		t.Errorf("stub %s %v", m.Data, m.Header)
	}
}

func TestDeadLetterReplay(t *testing.T) {
	up := newUpstream(t, always(500))
	e := newEnv(t, "routes:"+routeYAML("billing", up.URL, ""))
	e.run()
	e.publish("billing", "b-1", `{"id":"b-1"}`, "Custom", "kept")
	if got := e.outcome("b-1").Header.Get(headers.Outcome); got != headers.OutcomeDead {
		t.Fatalf("outcome %q, want dead", got)
	}
	up.setFail(always(200))
	ctx := context.Background()
	n, err := deadletter.Replay(ctx, e.js, "billing", []string{"b-1"})
	if err != nil || n != 1 {
		t.Fatalf("replay: %d, %v", n, err)
	}
	var replayed *nats.Msg
	for deadline := time.Now().Add(20 * time.Second); replayed == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		e.mu.Lock()
		for _, m := range e.outcomes {
			if strings.HasPrefix(m.Header.Get(headers.OriginalID), "b-1-replay-") {
				replayed = m
			}
		}
		e.mu.Unlock()
	}
	if replayed == nil {
		t.Fatalf("no outcome for the replayed message")
	}
	if got := replayed.Header.Get(headers.Outcome); got != headers.OutcomeOK {
		t.Fatalf("replayed outcome %q, want ok", got)
	}
	parked, err := deadletter.List(ctx, e.js, "billing", 0)
	if err != nil || len(parked) != 0 {
		t.Fatalf("after replay %d dead letters (%v), want 0", len(parked), err)
	}
	if _, err := deadletter.Replay(ctx, e.js, "billing", []string{"nope"}); err == nil {
		t.Errorf("replaying an unknown id succeeded")
	}
}

func TestDeduplication(t *testing.T) {
	up := newUpstream(t, always(200))
	e := newEnv(t, "routes:"+routeYAML("dedupe", up.URL, ""))
	first := e.publish("dedupe", "same", `{"id":"same"}`)
	second := e.publish("dedupe", "same", `{"id":"same"}`)
	if !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second publish not detected as duplicate: %+v", second)
	}
	e.run()
	e.outcome("same")
	// A later message's outcome bounds the wait for a second outcome.
	e.publish("dedupe", "after", `{"id":"after"}`)
	e.outcome("after")
	if n := e.count("same"); n != 1 {
		t.Fatalf("%d outcomes for one message published twice, want 1", n)
	}
	if n := up.callsOf("same"); n != 1 {
		t.Fatalf("target called %d times, want 1", n)
	}
}

// TestClaimedOutcomeIsCompleted simulates a crash after an outcome was
// published but before the input was acked: the redelivery must not produce
// a second outcome, and a claimed dead letter must reach the DLQ.
func TestClaimedOutcomeIsCompleted(t *testing.T) {
	up := newUpstream(t, always(200))
	e := newEnv(t, "routes:"+routeYAML("claims", up.URL, ""))
	ctx := context.Background()
	ack := e.publish("claims", "claimed-dead", `{"id":"claimed-dead"}`)
	claim := nats.NewMsg("bw.out.claims")
	claim.Header.Set(headers.MsgID, "claims:"+strconv.FormatUint(ack.Sequence, 10))
	claim.Header.Set(headers.Outcome, headers.OutcomeDead)
	claim.Header.Set(headers.OriginalID, "claimed-dead")
	claim.Data = (&deadletter.Record{Route: "claims", Subject: "bw.in.claims", MessageID: "claimed-dead", Reason: "first delivery"}).Marshal()
	if _, err := e.js.PublishMsg(ctx, claim); err != nil {
		t.Fatal(err)
	}
	e.run()
	e.publish("claims", "after", `{"id":"after"}`)
	e.outcome("after")
	deadline := time.Now().Add(20 * time.Second)
	var parked []deadletter.Parked
	for time.Now().Before(deadline) {
		var err error
		if parked, err = deadletter.List(ctx, e.js, "claims", 0); err == nil && len(parked) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(parked) != 1 || parked[0].Record.Reason != "first delivery" {
		t.Fatalf("claimed dead letter not completed: %+v", parked)
	}
	if n := e.count("claimed-dead"); n != 1 {
		t.Fatalf("%d outcomes, want only the claimed one", n)
	}
	if n := up.callsOf("claimed-dead"); n > 1 {
		t.Fatalf("target called %d times", n)
	}
	// Completing a claimed outcome is not a second outcome.
	body := scrape(t, "http://"+e.svc.HTTPAddr()+"/metrics")
	if strings.Contains(body, `breakwater_outcomes_total{outcome="dead",route="claims"}`) || !strings.Contains(body, `breakwater_outcomes_total{outcome="ok",route="claims"} 1`) {
		t.Errorf("outcomes counted: %s", grepLines(body, "breakwater_outcomes_total"))
	}
	s, _ := e.js.Stream(ctx, topology.StreamIn)
	info, _ := s.Info(ctx)
	for i := 0; i < 200 && info.State.Msgs > 0; i++ {
		time.Sleep(20 * time.Millisecond)
		info, _ = s.Info(ctx)
	}
	if info.State.Msgs != 0 {
		t.Fatalf("%d messages left in %s: the claimed message was not acked", info.State.Msgs, topology.StreamIn)
	}
}

func TestUnknownRouteIsDeadLettered(t *testing.T) {
	up := newUpstream(t, always(200))
	e := newEnv(t, "routes:"+routeYAML("known", up.URL, ""))
	e.run()
	e.publish("nosuchroute", "lost-1", `{"id":"lost-1"}`)
	m := e.outcome("lost-1")
	if m.Header.Get(headers.Outcome) != headers.OutcomeDead || m.Header.Get(headers.ErrorKind) != string(abi.ErrorUnknownRoute) {
		t.Fatalf("outcome %v", m.Header)
	}
	parked := e.deadLetters("nosuchroute", 1)
	if len(parked) != 1 {
		t.Fatalf("dead letters of the unknown route: %d, want 1", len(parked))
	}
	if !strings.Contains(parked[0].Record.LastError().Message, "no route serves bw.in.nosuchroute") {
		t.Errorf("unclear error: %q", parked[0].Record.LastError().Message)
	}
}

func TestBrokenTargets(t *testing.T) {
	// A port nothing listens on: connection refused.
	refused := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	// A target that hangs until the test ends.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })

	e := newEnv(t, "routes:"+routeYAML("refused", refused, "")+
		strings.Replace(routeYAML("hangs", hang.URL, ""), "timeout: 1s", "timeout: 100ms", 1))
	e.run()
	e.publish("refused", "r-1", `{"id":"r-1"}`)
	e.publish("hangs", "h-1", `{"id":"h-1"}`)
	for id, kind := range map[string]abi.ErrorKind{"r-1": abi.ErrorConnect, "h-1": abi.ErrorTimeout} {
		m := e.outcome(id)
		if m.Header.Get(headers.Outcome) != headers.OutcomeDead || m.Header.Get(headers.ErrorKind) != string(kind) {
			t.Errorf("%s: outcome %q kind %q, want dead %q (%s)", id, m.Header.Get(headers.Outcome), m.Header.Get(headers.ErrorKind), kind, m.Header.Get(headers.Error))
		}
	}
}

func TestReplyToAndHealth(t *testing.T) {
	up := newUpstream(t, always(200))
	// my.> is outside the default reply namespaces: the route widens them.
	e := newEnv(t, "routes:"+routeYAML("replies", up.URL, "    reply_subjects: ['my.>']\n"))
	sub, err := e.nc.SubscribeSync("my.inbox")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + e.svc.HTTPAddr()
	if code := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz before run: %d, want 503", code)
	}
	e.run()
	e.publish("replies", "rp-1", `{"id":"rp-1"}`, headers.ReplyTo, "my.inbox")
	m, err := sub.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	if m.Header.Get(headers.Outcome) != headers.OutcomeOK || m.Header.Get(headers.OriginalID) != "rp-1" {
		t.Errorf("reply headers %v", m.Header)
	}
	if code := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
	var ready atomic.Bool
	for i := 0; i < 200 && !ready.Load(); i++ {
		ready.Store(get(t, base+"/readyz") == http.StatusOK)
		time.Sleep(10 * time.Millisecond)
	}
	if !ready.Load() {
		t.Errorf("readyz never became ready")
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestExternalNATS runs the service against a NATS server it did not start
// (nats.url), as with an external cluster.
func TestExternalNATS(t *testing.T) {
	srv := testkit.JetStream(t)
	up := newUpstream(t, always(200))
	runService(t, fmt.Sprintf("nats:\n  url: %s\nhttp:\n  listen: \"\"\nroutes:%s", srv.URL, routeYAML("ext", up.URL, "")))
	ctx := context.Background()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("bw.reply.ext")
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("bw.in.ext")
	m.Data = []byte(`{"id":"e-1"}`)
	m.Header.Set(headers.MsgID, "e-1")
	m.Header.Set(headers.ReplyTo, "bw.reply.ext")
	js, _ := jetstream.New(nc)
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	res, err := sub.NextMsg(20 * time.Second)
	if err != nil || res.Header.Get(headers.Outcome) != headers.OutcomeOK {
		t.Fatalf("outcome via external NATS: %v %v", res, err)
	}
	if srv.NumClients() == 0 {
		t.Fatal("service not connected to the external server")
	}
}

// TestPublishBackPressure: with at most one outstanding outcome publish,
// 64 concurrent workers stall on publishing instead of dropping results.
func TestPublishBackPressure(t *testing.T) {
	t.Setenv("BW_STREAMS_PUBLISH_MAX_PENDING", "1")
	up := newUpstream(t, always(200))
	e := newEnv(t, "routes:"+routeYAML("pressure", up.URL, ""))
	const n = 300
	for i := range n {
		id := fmt.Sprintf("bp-%d", i)
		e.publish("pressure", id, `{"id":"`+id+`"}`)
	}
	e.run()
	for i := range n {
		if m := e.outcome(fmt.Sprintf("bp-%d", i)); m.Header.Get(headers.Outcome) != headers.OutcomeOK {
			t.Fatalf("bp-%d: outcome %q", i, m.Header.Get(headers.Outcome))
		}
	}
	if line := e.logLine("publish"); strings.Contains(line, `"level":"ERROR"`) {
		t.Errorf("publish errors under back-pressure: %s", line)
	}
}
