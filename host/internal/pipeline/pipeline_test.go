package pipeline_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/internal/attempt/attempttest"
	"github.com/breakwater-dev/breakwater/host/internal/pipeline"
	"github.com/breakwater-dev/breakwater/host/internal/syncpath"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// run runs a pipeline over routes on an in-process server until the test
// ends, and returns a client.
func run(t *testing.T, routes ...*attempt.Route) jetstream.JetStream {
	t.Helper()
	ctx := context.Background()
	srv := testkit.JetStream(t)
	nc, js := srv.Connect(t)
	if err := topology.Ensure(ctx, js, topology.Options{Replicas: 1, DuplicateWindow: time.Minute}); err != nil {
		t.Fatal(err)
	}
	core := attempttest.Core(t, js)
	p, err := pipeline.New(ctx, pipeline.Options{JS: js, NC: nc, Routes: routes, Core: core, AckWait: 5 * time.Second,
		Sync: syncpath.New(syncpath.Options{NC: nc, Replies: nc, Core: core, Observer: attempt.NopObserver{}}), ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testkit.Eventually(t, 10*time.Second, "the pipeline is ready", func() bool { return p.Ready() == nil })
	_, client := srv.Connect(t)
	return client
}

// outcomes reads n outcomes of route from bw.out (bounded).
func outcomes(t *testing.T, js jetstream.JetStream, route string, n int) map[string]*nats.Msg {
	t.Helper()
	c, err := js.OrderedConsumer(context.Background(), topology.StreamOut, jetstream.OrderedConsumerConfig{FilterSubjects: []string{topology.OutPrefix + route}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*nats.Msg{}
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		m, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			continue
		}
		out[m.Headers().Get(headers.OriginalID)] = &nats.Msg{Header: m.Headers(), Data: m.Data()}
	}
	if len(out) != n {
		t.Fatalf("%d outcomes of %s; want %d", len(out), route, n)
	}
	return out
}

func TestPipeline(t *testing.T) {
	ok, flaky, down := testkit.NewUpstream(t), testkit.NewUpstream(t), testkit.NewUpstream(t)
	flaky.Respond(func(_ *http.Request, _ []byte, n int) testkit.Reply {
		if n == 1 {
			return testkit.Reply{Status: 503}
		}
		return testkit.Reply{Body: "second time"}
	})
	down.Set(testkit.Reply{Status: 503, Body: "down"})
	js := run(t,
		attempttest.Route(t, attempttest.Spec{Name: "ok", URLs: []string{ok.URL}}),
		attempttest.Route(t, attempttest.Spec{Name: "flaky", URLs: []string{flaky.URL}}),
		attempttest.Route(t, attempttest.Spec{Name: "down", URLs: []string{down.URL}, MaxAttempts: 2}),
	)
	ctx := context.Background()
	for _, route := range []string{"ok", "flaky", "down"} {
		for i := range 3 {
			m := nats.NewMsg(topology.In(route))
			m.Header.Set(headers.MsgID, fmt.Sprintf("%s-%d", route, i))
			m.Data = []byte(`{}`)
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tt := range []struct {
		route, outcome, attempts string
	}{{"ok", headers.OutcomeOK, "1"}, {"down", headers.OutcomeDead, "2"}} {
		for id, m := range outcomes(t, js, tt.route, 3) {
			if m.Header.Get(headers.Outcome) != tt.outcome || m.Header.Get(headers.Attempts) != tt.attempts || m.Header.Get(headers.MsgID) == "" {
				t.Errorf("%s: outcome %s after %s attempts; want %s after %s", id, m.Header.Get(headers.Outcome), m.Header.Get(headers.Attempts), tt.outcome, tt.attempts)
			}
		}
	}
	retried := 0
	for _, m := range outcomes(t, js, "flaky", 3) {
		if m.Header.Get(headers.Outcome) == headers.OutcomeOK && m.Header.Get(headers.Attempts) == "2" {
			retried++
		}
	}
	if retried != 1 {
		t.Errorf("%d messages ok after a durable retry; want the one whose first call got the 503", retried)
	}
	dead, err := deadletter.List(ctx, js, "down", 0)
	if err != nil || len(dead) != 3 {
		t.Fatalf("dead letters: %d, %v", len(dead), err)
	}
	for _, d := range dead {
		if len(d.Record.Errors) != 2 || d.Record.Attempts != 2 {
			t.Errorf("dead letter history: %+v", d.Record)
		}
	}
	// Unrouted subjects are dead-lettered too.
	if _, err := js.Publish(ctx, topology.In("nosuch"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the unrouted message is dead-lettered", func() bool {
		d, _ := deadletter.List(ctx, js, "nosuch", 0)
		return len(d) == 1
	})
}
