package service_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/client"
	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// Attack tests: each performs an attack of the trust-boundaries issue
// against a real embedded server with users, as a producer would, and
// asserts that it fails and that every message still reaches exactly one
// terminal outcome. See docs/security.md.

// producers are the users of the attack tests: shop may use every route,
// eve only orders.
const producers = `      - {user: shop, password: shop-secret, role: producer}
      - {user: eve, password: eve-secret, role: producer, routes: [orders]}
`

// producerConn is a producer's connection, with its own inbox prefix; the
// asynchronous errors the server sends it (permission violations) are kept.
type producerConn struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu   sync.Mutex
	errs []string
}

func connectProducer(t *testing.T, e *env, user, password string) *producerConn {
	t.Helper()
	p := &producerConn{}
	nc, err := nats.Connect(e.svc.NATSURL(), nats.UserInfo(user, password), nats.CustomInboxPrefix("_INBOX."+user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			p.mu.Lock()
			p.errs = append(p.errs, err.Error())
			p.mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	p.nc = nc
	p.js, _ = jetstream.New(nc)
	return p
}

// violations returns the permission violations the server reported.
func (p *producerConn) violations() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.errs, "\n")
}

func (p *producerConn) publish(t *testing.T, route, id, payload string, hdr ...string) error {
	t.Helper()
	m := nats.NewMsg("bw.in." + route)
	m.Data = []byte(payload)
	m.Header.Set(headers.MsgID, id)
	for i := 0; i+1 < len(hdr); i += 2 {
		m.Header.Set(hdr[i], hdr[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := p.js.PublishMsg(ctx, m)
	return err
}

// streamMsgs returns the number of messages in stream (0 if it is gone,
// which the caller checks separately).
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) (uint64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// TestAttackReplySubjects (issue item 1): Bw-Reply-To naming the JetStream
// API, a flag key, another route's dead letters or a subject too long for
// the server is refused; the outcomes still land on bw.out, and nothing is
// purged, deleted, written or forged.
func TestAttackReplySubjects(t *testing.T) {
	up := newUpstream(t, always(200))
	e := newEnvAuth(t, producers, "routes:"+routeYAML("orders", up.URL, "")+routeYAML("other", up.URL, ""))
	e.run()
	eve := connectProducer(t, e, "eve", "eve-secret")
	shop := connectProducer(t, e, "shop", "shop-secret")

	evil := []string{
		"$JS.API.STREAM.PURGE." + topology.StreamIn,
		"$JS.API.STREAM.DELETE." + topology.StreamDLQ,
		"$KV." + topology.BucketFlags + ".orders.enabled",
		"bw.dlq.other",
		"_BW_INBOX.forged",
		"_INBOX." + strings.Repeat("x", 5000),
	}
	for i, reply := range evil {
		if err := eve.publish(t, "orders", fmt.Sprintf("evil-%d", i), `{"id":"x"}`, headers.ReplyTo, reply); err != nil {
			t.Fatalf("publishing evil-%d: %v", i, err)
		}
	}
	const n = 20
	for i := range n {
		id := fmt.Sprintf("other-%d", i)
		if err := shop.publish(t, "other", id, `{"id":"`+id+`"}`); err != nil {
			t.Fatal(err)
		}
	}
	for i := range evil {
		id := fmt.Sprintf("evil-%d", i)
		if m := e.outcome(id); m.Header.Get(headers.Outcome) != headers.OutcomeOK {
			t.Errorf("%s: outcome %q", id, m.Header.Get(headers.Outcome))
		}
	}
	for i := range n {
		e.outcome(fmt.Sprintf("other-%d", i))
	}
	for i := range evil {
		if c := e.count(fmt.Sprintf("evil-%d", i)); c != 1 {
			t.Errorf("evil-%d: %d outcomes", i, c)
		}
	}
	for i := range n {
		if c := e.count(fmt.Sprintf("other-%d", i)); c != 1 {
			t.Errorf("other-%d: %d outcomes", i, c)
		}
	}
	// The same subjects as the reply subject of a sync request: no answer
	// is published there either.
	waitUntil(t, "ready", func() bool { return get(t, "http://"+e.svc.HTTPAddr()+"/readyz") == http.StatusOK })
	for _, reply := range evil[:5] {
		if err := shop.nc.PublishRequest("bw.call.other", reply, []byte(`{"id":"sync"}`)); err != nil {
			t.Fatal(err)
		}
	}
	// A legitimate request still gets its answer, after the evil ones.
	if res, err := shop.nc.Request("bw.call.other", []byte(`{"id":"sync-ok"}`), 10*time.Second); err != nil || res.Header.Get(headers.Outcome) != headers.OutcomeOK {
		t.Fatalf("sync call after the evil ones: %v %v", res, err)
	}
	if dl, err := streamMsgs(t, e.js, topology.StreamDLQ); err != nil || dl != 0 {
		t.Errorf("%s: %d dead letters (%v); want the stream intact and no forged dead letter", topology.StreamDLQ, dl, err)
	}
	kv, err := e.js.KeyValue(context.Background(), topology.BucketFlags)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(context.Background(), "orders.enabled"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("flag orders.enabled was written: %v", err)
	}
	body := scrape(t, "http://"+e.svc.HTTPAddr()+"/metrics")
	for _, want := range []string{fmt.Sprintf(`breakwater_replies_refused_total{route="orders"} %d`, len(evil)), `breakwater_replies_refused_total{route="other"} 5`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if line := e.logLine("reply refused", "$JS.API.STREAM.PURGE"); line == "" {
		t.Error("no log line says the reply to the JetStream API was refused")
	}
}

// TestAttackEavesdropping (item 2): a producer cannot subscribe to other
// users' inboxes or the runtime's, so it sees no one else's payloads,
// replies, dead-letter listings or flag values; a producer limited to a
// route cannot publish work on another.
func TestAttackEavesdropping(t *testing.T) {
	up := newUpstream(t, func(id string, _ int) int {
		if strings.HasPrefix(id, "dead") {
			return 500
		}
		return 200
	})
	e := newEnvAuth(t, producers, "routes:"+routeYAML("orders", up.URL, "")+routeYAML("other", up.URL, ""))
	e.run()
	waitUntil(t, "ready", func() bool { return get(t, "http://"+e.svc.HTTPAddr()+"/readyz") == http.StatusOK })
	eve := connectProducer(t, e, "eve", "eve-secret")
	shop := connectProducer(t, e, "shop", "shop-secret")

	var seen sync.Map
	var got int
	var mu sync.Mutex
	for _, subj := range []string{"_INBOX.>", "_BW_INBOX.>", "_INBOX.shop.>", "_INBOX.ops.>", "$KV.>", "bw.out.>", ">"} {
		if _, err := eve.nc.Subscribe(subj, func(m *nats.Msg) {
			mu.Lock()
			got++
			mu.Unlock()
			seen.Store(m.Subject, true)
		}); err != nil {
			t.Fatal(err)
		}
	}
	own, err := eve.nc.SubscribeSync("_INBOX.eve.own")
	if err != nil {
		t.Fatal(err)
	}
	if err := eve.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// Traffic eve must not see: shop's work with a reply, shop's sync call,
	// the admin listing dead letters and setting a flag.
	if err := shop.publish(t, "other", "s-1", `{"id":"s-1"}`, headers.ReplyTo, "_INBOX.shop.r1"); err != nil {
		t.Fatal(err)
	}
	if err := shop.publish(t, "other", "dead-1", `{"id":"dead-1"}`); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(shop.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res, err := c.Call(ctx, "other", []byte(`{"id":"sync-1"}`)); err != nil || res.Outcome != headers.OutcomeOK {
		t.Fatalf("shop's sync call: %v %v", res, err)
	}
	e.outcome("s-1")
	e.outcome("dead-1")
	if parked := e.deadLetters("other", 1); len(parked) != 1 {
		t.Fatalf("dead letters: %d", len(parked))
	}
	kv, err := e.js.KeyValue(ctx, topology.BucketFlags)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "global.apikey", "secret"); err != nil {
		t.Fatal(err)
	}
	// Eve's own inbox works: the work she may publish gets its reply.
	if err := eve.publish(t, "orders", "e-1", `{"id":"e-1"}`, headers.ReplyTo, "_INBOX.eve.own"); err != nil {
		t.Fatal(err)
	}
	if m, err := own.NextMsg(10 * time.Second); err != nil || m.Header.Get(headers.OriginalID) != "e-1" {
		t.Fatalf("eve's own reply: %v %v", m, err)
	}
	// Eve may not publish work on a route she is not given.
	if err := eve.publish(t, "other", "e-2", `{"id":"e-2"}`); err == nil {
		t.Error("eve published work on route other")
	}
	_ = eve.nc.Flush()
	mu.Lock()
	n := got
	mu.Unlock()
	if n != 0 {
		var subjects []string
		seen.Range(func(k, _ any) bool { subjects = append(subjects, k.(string)); return true })
		t.Errorf("eve received %d messages not addressed to her: %v", n, subjects)
	}
	v := eve.violations()
	for _, subj := range []string{`"_INBOX.>"`, `"_BW_INBOX.>"`, `"_INBOX.shop.>"`, `"$KV.>"`} {
		if !strings.Contains(v, "Subscription to "+subj) {
			t.Errorf("no permission violation for eve's subscription to %s; violations:\n%s", subj, v)
		}
	}
}

// TestAttackPoisonSubjects (item 3): subjects and keys built from producer
// input that are too long for the server no longer close the runtime's
// connection: a 5,000-character cache key is hashed (and found again), a
// 4,000-character route token is dead-lettered on bw.dlq._invalid, and
// every route keeps working.
func TestAttackPoisonSubjects(t *testing.T) {
	var mu sync.Mutex
	failing := false
	up := newUpstream(t, func(string, int) int {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return 503
		}
		return 200
	})
	e := newEnvAuth(t, producers, "routes:"+routeYAML("orders", up.URL, "")+routeYAML("other", up.URL, ""))
	e.run()
	shop := connectProducer(t, e, "shop", "shop-secret")

	longKey := strings.Repeat("k", 5000)
	if err := shop.publish(t, "orders", "long-key", `{"id":"`+longKey+`"}`); err != nil {
		t.Fatal(err)
	}
	if m := e.outcome("long-key"); m.Header.Get(headers.Outcome) != headers.OutcomeOK {
		t.Fatalf("long-key: outcome %q (%s)", m.Header.Get(headers.Outcome), m.Header.Get(headers.Error))
	}
	// A route token of 4,000 characters: only an unrestricted producer
	// (here the admin client) can publish it.
	poison := "bw.in." + strings.Repeat("r", 4000)
	pm := nats.NewMsg(poison)
	pm.Data = []byte(`{}`)
	pm.Header.Set(headers.MsgID, "poison-route")
	if _, err := e.js.PublishMsg(context.Background(), pm); err != nil {
		t.Fatal(err)
	}
	parked := e.deadLetters(topology.InvalidToken, 1)
	if len(parked) != 1 || parked[0].Record == nil || parked[0].Record.LastError().Kind != abi.ErrorUnknownRoute || parked[0].Record.Subject != poison {
		t.Fatalf("poison route: dead letters %+v", parked)
	}
	// A flood of distinct junk subjects is dead-lettered in bounded
	// batches, and counted under one metric label.
	const flood = 150
	for i := range flood {
		fm := nats.NewMsg(fmt.Sprintf("bw.in.%s%03d", strings.Repeat("j", 2000), i))
		fm.Header.Set(headers.MsgID, fmt.Sprintf("flood-%d", i))
		if _, err := e.js.PublishMsg(context.Background(), fm); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the flood is dead-lettered", func() bool {
		n, err := streamMsgs(t, e.js, topology.StreamDLQ)
		return err == nil && n == 1+flood
	})
	if body := scrape(t, "http://"+e.svc.HTTPAddr()+"/metrics"); !strings.Contains(body, fmt.Sprintf(`breakwater_outcomes_total{outcome="dead",route="_unrouted"} %d`, 1+flood)) {
		t.Errorf("unrouted outcomes not counted under one label: %s", grepLines(body, "breakwater_outcomes_total"))
	}
	// The cache entry of the long key is found again when the target fails.
	mu.Lock()
	failing = true
	mu.Unlock()
	if err := shop.publish(t, "orders", "long-key-2", `{"id":"`+longKey+`"}`); err != nil {
		t.Fatal(err)
	}
	if m := e.outcome("long-key-2"); m.Header.Get(headers.Outcome) != headers.OutcomeCached {
		t.Errorf("long-key-2: outcome %q, want cached", m.Header.Get(headers.Outcome))
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	// Every route still works, and the instance is ready.
	for _, r := range []string{"orders", "other"} {
		if err := shop.publish(t, r, "after-"+r, `{"id":"after"}`); err != nil {
			t.Fatal(err)
		}
		if m := e.outcome("after-" + r); m.Header.Get(headers.Outcome) != headers.OutcomeOK {
			t.Errorf("after-%s: outcome %q", r, m.Header.Get(headers.Outcome))
		}
	}
	waitUntil(t, "ready after poison input", func() bool { return get(t, "http://"+e.svc.HTTPAddr()+"/readyz") == http.StatusOK })
}

// TestAttackReservedStubHeaders (item 4): a stub module setting Nats-Msg-Id
// and Bw-Outcome cannot forge the outcome's id or say ok: the reserved
// headers are dropped, its own header is kept, and every message gets
// exactly one stub outcome.
func TestAttackReservedStubHeaders(t *testing.T) {
	up := newUpstream(t, always(503))
	e := newEnv(t, moduleDir(t, "stub_reserved_headers")+"routes:"+routeYAML("stubs", up.URL, `    modules:
      stub:
        name: stub_reserved_headers
`))
	e.run()
	const n = 20
	for i := range n {
		id := fmt.Sprintf("st-%d", i)
		e.publish("stubs", id, `{"id":"`+id+`"}`)
	}
	for i := range n {
		id := fmt.Sprintf("st-%d", i)
		m := e.outcome(id)
		if m.Header.Get(headers.Outcome) != headers.OutcomeStub || string(m.Data) != "stub" || m.Header.Get("X-Team") != "eve" {
			t.Errorf("%s: outcome %q data %q headers %v", id, m.Header.Get(headers.Outcome), m.Data, m.Header)
		}
		if m.Header.Get(headers.MsgID) == "forged" {
			t.Errorf("%s: the stub forged Nats-Msg-Id", id)
		}
	}
	for i := range n {
		if c := e.count(fmt.Sprintf("st-%d", i)); c != 1 {
			t.Errorf("st-%d: %d outcomes", i, c)
		}
	}
	if e.logLine("stub headers in the Nats- or Bw- namespace") == "" {
		t.Error("dropping the reserved headers was not logged")
	}
}

// TestAttackOversizedPayloads (item 5): a 7 MB payload that dead-letters
// keeps its original by reference and replays whole; a target answering
// more than an outcome can carry is a terminal result_too_large failure,
// called once, and served by the fallback.
func TestAttackOversizedPayloads(t *testing.T) {
	big := strings.Repeat("p", 7<<20)
	var mu sync.Mutex
	recover := false
	up := newUpstream(t, func(id string, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		if id == "big" && !recover {
			return 500
		}
		return 200
	})
	huge := newBodyUpstream(t, 9<<20)
	e := newEnv(t, "routes:"+
		strings.Replace(routeYAML("bulk", up.URL, ""), "    cache:\n      key: '{{.payload.id}}'\n      ttl: 1h\n", "", 1)+
		strings.Replace(routeYAML("huge", huge.URL, "    stub:\n      payload: small stub\n"), "    cache:\n      key: '{{.payload.id}}'\n      ttl: 1h\n", "", 1))
	e.run()
	// Nats-Expected-Stream holds for BW_IN, and must not make the copy of
	// the original (or its replay) fail.
	e.publish("bulk", "big", `{"id":"big","pad":"`+big+`"}`, "Nats-Expected-Stream", topology.StreamIn)
	m := e.outcome("big")
	if m.Header.Get(headers.Outcome) != headers.OutcomeDead {
		t.Fatalf("big: outcome %q", m.Header.Get(headers.Outcome))
	}
	parked := e.deadLetters("bulk", 1)
	if len(parked) != 1 || parked[0].Record == nil || parked[0].Record.Original == nil || len(parked[0].Record.Payload) != 0 {
		t.Fatalf("big: dead letter does not keep the original by reference: %+v", parked)
	}
	mu.Lock()
	recover = true
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if n, err := deadletter.Replay(ctx, e.js, "bulk", nil); err != nil || n != 1 {
		t.Fatalf("replay: %d %v", n, err)
	}
	// Replay gives the message a fresh id, <id>-replay-<dead-letter seq>.
	if o := e.outcome(fmt.Sprintf("big-replay-%d", parked[0].Seq)); o.Header.Get(headers.Outcome) != headers.OutcomeOK {
		t.Fatalf("replayed big: outcome %q", o.Header.Get(headers.Outcome))
	}
	if got := up.lastBodyLen("big"); got != len(`{"id":"big","pad":"`+big+`"}`) {
		t.Errorf("the replayed payload reached the target with %d bytes", got)
	}

	e.publish("huge", "h-1", `{"id":"h-1"}`)
	hm := e.outcome("h-1")
	if hm.Header.Get(headers.Outcome) != headers.OutcomeStub || hm.Header.Get(headers.ErrorKind) != string(abi.ErrorResultTooLarge) || string(hm.Data) != "small stub" {
		t.Errorf("h-1: outcome %q kind %q (%s)", hm.Header.Get(headers.Outcome), hm.Header.Get(headers.ErrorKind), hm.Header.Get(headers.Error))
	}
	if c := huge.calls(); c != 1 {
		t.Errorf("the target answering too much was called %d times, want 1 (not retried)", c)
	}
	if line := e.logLine("maximum payload"); line != "" {
		t.Errorf("an outcome exceeded max_payload: %s", line)
	}
}

// TestAttackDeliveryBound (item 5): a message whose processing fails
// internally on every delivery (its attempt history cannot be read: the
// bucket is gone) is dead-lettered at the hard bound, naming the failure,
// instead of being redelivered forever.
func TestAttackDeliveryBound(t *testing.T) {
	t.Setenv("BW_STREAMS_INTERNAL_RETRIES", "3")
	t.Setenv("BW_STREAMS_INTERNAL_RETRY_DELAY", "50ms")
	up := newUpstream(t, always(503))
	e := newEnv(t, "routes:"+strings.Replace(routeYAML("bounded", up.URL, ""), "max_attempts: 3", "max_attempts: 2", 1))
	ctx := context.Background()
	if err := e.js.DeleteKeyValue(ctx, topology.BucketAttempts); err != nil {
		t.Fatal(err)
	}
	e.run()
	e.publish("bounded", "b-1", `{"id":"b-1"}`)
	m := e.outcome("b-1")
	if m.Header.Get(headers.Outcome) != headers.OutcomeDead || !strings.Contains(m.Header.Get(headers.Error), "hard bound") {
		t.Fatalf("b-1: outcome %q error %q", m.Header.Get(headers.Outcome), m.Header.Get(headers.Error))
	}
	parked := e.deadLetters("bounded", 1)
	if len(parked) != 1 || !strings.Contains(parked[0].Record.Reason, "attempt history") {
		t.Fatalf("the dead letter does not name the internal failure: %+v", parked)
	}
	if c := e.count("b-1"); c != 1 {
		t.Errorf("%d outcomes", c)
	}
}

// TestAttackDeadlineHeader (item 7): a Bw-Deadline-Ms that is not a
// positive whole number gets a 400 error reply.
func TestAttackDeadlineHeader(t *testing.T) {
	up := newUpstream(t, always(200))
	e := newEnv(t, "routes:"+routeYAML("syncd", up.URL, ""))
	e.run()
	waitUntil(t, "ready", func() bool { return get(t, "http://"+e.svc.HTTPAddr()+"/readyz") == http.StatusOK })
	for _, v := range []string{"-5", "0", "soon", "1.5", "99999999999999999999"} {
		m := nats.NewMsg("bw.call.syncd")
		m.Data = []byte(`{"id":"d"}`)
		m.Header.Set(headers.Deadline, v)
		res, err := e.nc.RequestMsg(m, 5*time.Second)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if res.Header.Get(headers.Status) != "400" || !strings.Contains(string(res.Data), headers.Deadline) {
			t.Errorf("Bw-Deadline-Ms %q: status %q body %s", v, res.Header.Get(headers.Status), res.Data)
		}
	}
}

// bodyUpstream answers every call with 200 and a body of size bytes.
type bodyUpstream struct {
	*testkit.Upstream
}

func newBodyUpstream(t *testing.T, size int) *bodyUpstream {
	u := &bodyUpstream{testkit.NewUpstream(t)}
	u.Set(testkit.Reply{Body: strings.Repeat("b", size)})
	return u
}

func (u *bodyUpstream) calls() int { return u.Calls() }

// TestAttackOversizedSyncReply (item 5): a sync answer larger than an
// outcome can carry (here a 9 MB stub) gets a result_too_large error reply
// instead of no reply at all.
func TestAttackOversizedSyncReply(t *testing.T) {
	up := newUpstream(t, always(503))
	e := newEnv(t, "routes:"+routeYAML("bigstub", up.URL, "    stub:\n      payload: '"+strings.Repeat("s", 9<<20)+"'\n"))
	e.run()
	waitUntil(t, "ready", func() bool { return get(t, "http://"+e.svc.HTTPAddr()+"/readyz") == http.StatusOK })
	res, err := e.nc.Request("bw.call.bigstub", []byte(`{"id":"s-1"}`), 20*time.Second)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if res.Header.Get(headers.Outcome) != headers.OutcomeError || res.Header.Get(headers.Status) != "502" || res.Header.Get(headers.ErrorKind) != string(abi.ErrorResultTooLarge) {
		t.Errorf("answer: headers %v body %.200s", res.Header, res.Data)
	}
}
