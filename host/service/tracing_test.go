package service_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/service"
)

const (
	producerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	producerParent  = "00-" + producerTraceID + "-00f067aa0ba902b7-01"
)

// traceTarget is an HTTP target that records the traceparent it got and
// fails the first call of every message (so a retry decision is made).
func traceTarget(t *testing.T) (*httptest.Server, func(id string) []string) {
	var mu sync.Mutex
	got := map[string][]string{}
	calls := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Idempotency-Key")
		mu.Lock()
		got[id] = append(got[id], r.Header.Get("traceparent"))
		calls[id]++
		n := calls[id]
		mu.Unlock()
		if n == 1 {
			http.Error(w, "once", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv, func(id string) []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got[id]...)
	}
}

// TestTracing (issue 13, item 2): the producer's W3C trace context
// continues through processing, each attempt and the policy decision (a
// wasm module: its version and fuel on the span), to the target's request
// headers and the outcome's headers; spans carry route, message id,
// attempt, target and outcome.
func TestTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	up, traceparents := traceTarget(t)
	e := newEnvAuth(t, "", moduleDir(t, "retry-status-aware")+"routes:"+routeYAML("traced", up.URL, `    modules:
      retry:
        name: retry-status-aware
        config:
          delay_ms: 1
`), service.WithTracerProvider(tp))
	e.run()
	e.publish("traced", "tr-1", `{"id":"tr-1"}`, "traceparent", producerParent)
	out := e.outcome("tr-1")

	tps := traceparents("tr-1")
	if len(tps) != 2 {
		t.Fatalf("the target got %d calls, want 2", len(tps))
	}
	for _, tpv := range tps {
		if !strings.HasPrefix(tpv, "00-"+producerTraceID+"-") || tpv == producerParent {
			t.Errorf("the target got traceparent %q: want the producer's trace with Breakwater's span as parent", tpv)
		}
	}
	if v := out.Header.Get("traceparent"); !strings.HasPrefix(v, "00-"+producerTraceID+"-") {
		t.Errorf("the outcome carries traceparent %q, want the producer's trace", v)
	}
	spans := exp.GetSpans()
	find := func(prefix string) []tracetest.SpanStub {
		var out []tracetest.SpanStub
		for _, s := range spans {
			if strings.HasPrefix(s.Name, prefix) && s.SpanContext.TraceID().String() == producerTraceID {
				out = append(out, s)
			}
		}
		return out
	}
	attrs := func(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
		m := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes {
			m[a.Key] = a.Value
		}
		return m
	}
	process := find("breakwater.process traced")
	if len(process) != 2 {
		t.Fatalf("%d process spans in the producer's trace, want 2 (two deliveries); spans: %d", len(process), len(spans))
	}
	last := attrs(process[len(process)-1])
	if last["breakwater.route"].AsString() != "traced" || last["breakwater.message_id"].AsString() != "tr-1" || last["breakwater.outcome"].AsString() != "ok" {
		t.Errorf("process span attributes %v", last)
	}
	attempts := find("breakwater.attempt traced")
	if len(attempts) != 2 || attrs(attempts[0])["breakwater.target"].AsString() != "traced" || attrs(attempts[0])["breakwater.error_kind"].AsString() != "status" {
		t.Errorf("attempt spans: %d, first %v", len(attempts), attempts)
	}
	policy := find("breakwater.policy.retry")
	if len(policy) != 1 {
		t.Fatalf("%d retry decision spans, want 1", len(policy))
	}
	pa := attrs(policy[0])
	if !strings.HasPrefix(pa["breakwater.module"].AsString(), "retry-status-aware@") || pa["breakwater.module.version"].AsString() == "" || pa["breakwater.module.fuel"].AsInt64() <= 0 {
		t.Errorf("retry decision span attributes %v", pa)
	}
	_ = tp.Shutdown(context.Background())
}

// TestTraceContextPassedWhenTracingIsOff: with tracing off, an incoming
// traceparent still reaches the target and the outcome unchanged in its
// trace, so the producer's trace is not broken.
func TestTraceContextPassedWhenTracingIsOff(t *testing.T) {
	up, traceparents := traceTarget(t)
	e := newEnv(t, "routes:"+routeYAML("untraced", up.URL, ""))
	e.run()
	e.publish("untraced", "u-1", `{"id":"u-1"}`, "traceparent", producerParent)
	out := e.outcome("u-1")
	for _, tpv := range traceparents("u-1") {
		if !strings.HasPrefix(tpv, "00-"+producerTraceID+"-") {
			t.Errorf("the target got traceparent %q, want the producer's trace", tpv)
		}
	}
	if v := out.Header.Get("traceparent"); !strings.HasPrefix(v, "00-"+producerTraceID+"-") {
		t.Errorf("the outcome carries traceparent %q", v)
	}
}

// TestTracingSyncPath: a bw.call request's trace context continues to the
// target and comes back on the reply.
func TestTracingSyncPath(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	up, traceparents := traceTarget(t)
	e := newEnvAuth(t, "", "routes:"+routeYAML("tsync", up.URL, ""), service.WithTracerProvider(tp))
	e.run()
	waitUntil(t, "ready", func() bool { return get(t, "http://"+e.svc.HTTPAddr()+"/readyz") == http.StatusOK })
	m := nats.NewMsg("bw.call.tsync")
	m.Data = []byte(`{"id":"s-1"}`)
	m.Header.Set(headers.MsgID, "s-1")
	m.Header.Set("traceparent", producerParent)
	res, err := e.nc.RequestMsg(m, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Header.Get(headers.Outcome) != headers.OutcomeOK || !strings.HasPrefix(res.Header.Get("traceparent"), "00-"+producerTraceID+"-") {
		t.Errorf("reply headers %v", res.Header)
	}
	for _, tpv := range traceparents("s-1") {
		if !strings.HasPrefix(tpv, "00-"+producerTraceID+"-") {
			t.Errorf("the target got traceparent %q", tpv)
		}
	}
	// The call's span ends just after the reply is sent.
	waitUntil(t, "the breakwater.call span in the producer's trace", func() bool {
		for _, s := range exp.GetSpans() {
			if s.Name == "breakwater.call tsync" && s.SpanContext.TraceID().String() == producerTraceID {
				return true
			}
		}
		return false
	})
}
