package syncpath_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/internal/attempt/attempttest"
	"github.com/breakwater-dev/breakwater/host/internal/syncpath"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

type work struct{ sync.WaitGroup }

func (w *work) Add() { w.WaitGroup.Add(1) }

// serve subscribes r on an in-process server and returns a client.
func serve(t *testing.T, r *attempt.Route) *nats.Conn {
	t.Helper()
	srv := testkit.JetStream(t)
	nc, js := srv.Connect(t)
	s := syncpath.New(syncpath.Options{NC: nc, Replies: nc, Core: attempttest.Core(t, js), Observer: attempt.NopObserver{}})
	w := &work{}
	sub, err := s.Subscribe(context.Background(), w, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Drain(); w.Wait() })
	client, _ := srv.Connect(t)
	return client
}

func request(t *testing.T, nc *nats.Conn, route, payload string, hdr ...string) *nats.Msg {
	t.Helper()
	m := nats.NewMsg(topology.Call(route))
	m.Data = []byte(payload)
	for i := 0; i+1 < len(hdr); i += 2 {
		m.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := nc.RequestMsg(m, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestSyncPath(t *testing.T) {
	up := testkit.NewUpstream(t)
	up.Respond(func(_ *http.Request, _ []byte, n int) testkit.Reply {
		if n%2 == 1 {
			return testkit.Reply{Status: 503, Body: "down"}
		}
		return testkit.Reply{Body: "fine"}
	})
	down := testkit.NewUpstream(t)
	down.Set(testkit.Reply{Status: 404, Body: "no such thing"})
	nc := serve(t, attempttest.Route(t, attempttest.Spec{Name: "flaky", URLs: []string{up.URL}}))
	nc2 := serve(t, attempttest.Route(t, attempttest.Spec{Name: "gone", URLs: []string{down.URL}}))

	// A retry within the deadline.
	resp := request(t, nc, "flaky", `{}`)
	if resp.Header.Get(headers.Outcome) != headers.OutcomeOK || resp.Header.Get(headers.Attempts) != "2" || string(resp.Data) != "fine" || up.Calls() != 2 {
		t.Fatalf("outcome %s after %s attempts: %s", resp.Header.Get(headers.Outcome), resp.Header.Get(headers.Attempts), resp.Data)
	}
	// A permanent failure: an error reply with the target's 4xx.
	resp = request(t, nc2, "gone", `{}`)
	var body struct {
		Kind   string `json:"kind"`
		Status int    `json:"status"`
		Target string `json:"target"`
	}
	if err := json.Unmarshal(resp.Data, &body); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get(headers.Outcome) != headers.OutcomeError || resp.Header.Get(headers.Status) != "404" || body.Kind != "status" || body.Target != "t0" {
		t.Fatalf("error reply: %v %s", resp.Header, resp.Data)
	}
	// A deadline header that is not a number: 400.
	resp = request(t, nc2, "gone", `{}`, headers.Deadline, "soon")
	if resp.Header.Get(headers.Status) != "400" {
		t.Fatalf("bad deadline: %v %s", resp.Header, resp.Data)
	}
}

func TestSyncPathReplySubjectRefused(t *testing.T) {
	up := testkit.NewUpstream(t)
	nc := serve(t, attempttest.Route(t, attempttest.Spec{Name: "r", URLs: []string{up.URL}}))
	sub, err := nc.SubscribeSync("$KV.bw_flags.x")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: topology.Call("r"), Reply: "$KV.bw_flags.x", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("answered on a reply subject outside the route's namespaces: %s", m.Data)
	}
	if up.Calls() != 0 {
		t.Fatalf("the target was called %d times for a refused request", up.Calls())
	}
}
