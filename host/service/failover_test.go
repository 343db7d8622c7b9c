package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/service"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// index returns the node index of a server name ("bw-1" → 1).
func nodeIndex(name string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(name, "bw-"))
	return i
}

// leader returns the node leading stream, waiting (bounded) for one.
func leader(t *testing.T, js jetstream.JetStream, stream string) int {
	t.Helper()
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := js.Stream(ctx, stream)
		cancel()
		if err == nil && s.CachedInfo().Cluster != nil && s.CachedInfo().Cluster.Leader != "" {
			return nodeIndex(s.CachedInfo().Cluster.Leader)
		}
		last = err
	}
	t.Fatalf("stream %s has no leader within 30s (%v)", stream, last)
	return -1
}

var inFlightRE = regexp.MustCompile(`breakwater_in_flight\{route="[^"]+"\} (\d+)`)

// inFlight returns the instance's in-flight gauge summed over routes.
func (in *instance) inFlight(t *testing.T) int {
	t.Helper()
	n := 0
	for _, m := range inFlightRE.FindAllStringSubmatch(scrape(t, "http://"+in.svc.HTTPAddr()+"/metrics"), -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}

// failoverLoad publishes messages and reads every outcome through a
// connection to the whole cluster.
type failoverLoad struct {
	t  *testing.T
	nc *nats.Conn
	js jetstream.JetStream

	mu       sync.Mutex
	outcomes map[string][]string // producer id → outcomes seen
}

func newFailoverLoad(t *testing.T, urls string) *failoverLoad {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	l := &failoverLoad{t: t, nc: nc, js: js, outcomes: map[string][]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	outs, err := js.OrderedConsumer(ctx, topology.StreamOut, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := outs.Consume(func(m jetstream.Msg) {
		l.mu.Lock()
		id := m.Headers().Get(headers.OriginalID)
		l.outcomes[id] = append(l.outcomes[id], m.Headers().Get(headers.Outcome))
		l.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return l
}

// publish publishes ids[from:to], each retried (same Nats-Msg-Id, so at
// most once in the stream) until the stream takes it.
func (l *failoverLoad) publish(prefix string, from, to int) {
	l.t.Helper()
	for i := from; i < to; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		m := nats.NewMsg(topology.In("fo"))
		m.Data = []byte(`{"id":"` + id + `"}`)
		m.Header.Set(headers.MsgID, id)
		var err error
		for try := 0; try < 100; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = l.js.PublishMsg(ctx, m)
			cancel()
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			l.t.Fatalf("publishing %s: %v", id, err)
		}
	}
}

// waitAll waits (bounded) for an outcome for every id of prefix-0..n-1.
func (l *failoverLoad) waitAll(prefix string, n int, within time.Duration) {
	l.t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		l.mu.Lock()
		missing := 0
		for i := range n {
			if len(l.outcomes[fmt.Sprintf("%s-%d", prefix, i)]) == 0 {
				missing++
			}
		}
		l.mu.Unlock()
		if missing == 0 {
			return
		}
	}
}

// report counts, over prefix-0..n-1: messages without an outcome,
// messages with more than one, and dead ones.
func (l *failoverLoad) report(prefix string, n int) (lost, duplicates, dead int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range n {
		o := l.outcomes[fmt.Sprintf("%s-%d", prefix, i)]
		switch {
		case len(o) == 0:
			lost++
		case len(o) > 1:
			duplicates++
		}
		for _, x := range o {
			if x == headers.OutcomeDead {
				dead++
			}
		}
	}
	return lost, duplicates, dead
}

func failoverYAML(urls, upstream string) string {
	return fmt.Sprintf(`nats:
  url: %s
  connect_timeout: 30s
http:
  listen: 127.0.0.1:0
streams:
  replicas: 3
  ack_wait: 3s
  duplicate_window: 1m
  broker_timeout: 2s
  internal_retry_delay: 200ms
routes:
  - name: fo
    target:
      http:
        url: %s
    timeout: 1s
    max_attempts: 3
    concurrency: 32
    backoff: {initial: 20ms, max: 100ms, multiplier: 2, jitter: 0.2}
`, urls, upstream)
}

// TestFailover (issue 14): with a 3-node cluster, R3 streams, two runtime
// instances and a flaky upstream, kill the BW_OUT leader mid-stream, then
// the BW_IN leader, then one runtime instance, each restarted. After each:
// exactly one terminal outcome per message, none dead (internal failures
// use no attempts, and every message succeeds on its second call at the
// latest), the in-flight gauges back to 0, and both instances ready
// (consuming) again soon after the cluster has leaders.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster failover test")
	}
	c := newTestCluster(t)
	// 10% of messages fail their first call with 503.
	up := newUpstream(t, func(id string, call int) int {
		if call == 1 && strings.HasSuffix(id, "7") {
			return 503
		}
		return 200
	})
	yaml := failoverYAML(c.urls(), up.URL)
	a := startInstance(t, yaml)
	b := startInstance(t, yaml)
	a.waitReady(t, 30*time.Second)
	b.waitReady(t, 30*time.Second)
	load := newFailoverLoad(t, c.urls())

	phases := []struct {
		name string
		kill func() func() // stops something, returns how to restart it
	}{
		{"BW_OUT leader", func() func() {
			i := leader(t, load.js, topology.StreamOut)
			c.stop(i)
			return func() { c.start(i) }
		}},
		{"BW_IN leader", func() func() {
			i := leader(t, load.js, topology.StreamIn)
			c.stop(i)
			return func() { c.start(i) }
		}},
		{"runtime instance", func() func() {
			a.stop()
			return func() { a = startInstance(t, yaml) }
		}},
	}
	for n, ph := range phases {
		prefix := fmt.Sprintf("p%d", n)
		calls0 := up.totalCalls()
		// Steady load through the whole phase (about 800 messages a
		// second, bounded to 60 s): the kill lands mid-stream, and work
		// keeps coming after the restart.
		stopPub := make(chan struct{})
		published := make(chan int)
		go func() {
			n := 0
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); n += 20 {
				select {
				case <-stopPub:
					published <- n
					return
				case <-time.After(25 * time.Millisecond):
				}
				load.publish(prefix, n, n+20)
			}
			published <- n
		}()
		time.Sleep(500 * time.Millisecond)
		restart := ph.kill()
		time.Sleep(2 * time.Second)
		restart()
		// The cluster has leaders again: both instances resume consuming.
		leader(t, load.js, topology.StreamIn)
		leader(t, load.js, topology.StreamOut)
		back := time.Now()
		resumeA, resumeB := a.consumingSince(t, back), b.consumingSince(t, back)
		time.Sleep(500 * time.Millisecond)
		close(stopPub)
		perPhase := <-published
		load.waitAll(prefix, perPhase, 60*time.Second)
		lost, dups, dead := load.report(prefix, perPhase)
		extra := up.totalCalls() - calls0 - perPhase - perPhase/10
		internal, kept := 0, 0
		for _, in := range []*instance{a, b} {
			internal += strings.Count(in.logs.String(), `"msg":"internal failure`)
			kept += strings.Count(in.logs.String(), `"msg":"publishing the outcome an earlier delivery reached"`)
		}
		t.Logf("%-16s messages %d, lost %d, duplicate outcomes %d, dead %d, extra target calls %d, consuming again %v / %v after the cluster had leaders (so far: %d internal failures, %d kept outcomes published)",
			ph.name, perPhase, lost, dups, dead, extra, resumeA.Round(time.Millisecond), resumeB.Round(time.Millisecond), internal, kept)
		if lost != 0 || dups != 0 || dead != 0 {
			t.Errorf("%s: lost %d, duplicate outcomes %d, dead %d; want 0, 0, 0", ph.name, lost, dups, dead)
		}
		if resumeA > 5*time.Second || resumeB > 5*time.Second {
			t.Errorf("%s: consuming again after %v and %v, want within 5s of the cluster having leaders", ph.name, resumeA, resumeB)
		}
		for _, in := range []*instance{a, b} {
			waitUntil(t, "in-flight back to 0", func() bool { return in.inFlight(t) == 0 })
			if in.logs != nil && strings.Contains(in.logs.String(), "attempts exhausted") {
				t.Errorf("%s: a message used up its attempts", ph.name)
			}
		}
	}
}

var outcomeTimeRE = regexp.MustCompile(`"time":"([^"]+)","level":"[A-Z]+","msg":"outcome"`)

// consumingSince returns how long after since the instance logged its
// first outcome (bounded wait): proof that it consumes, which readiness
// alone is not.
func (in *instance) consumingSince(t *testing.T, since time.Time) time.Duration {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, m := range outcomeTimeRE.FindAllStringSubmatch(in.logs.String(), -1) {
			if ts, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && !ts.Before(since) {
				return ts.Sub(since)
			}
		}
	}
	t.Fatalf("no outcome within 30s after %v", since)
	return 0
}

// TestReadinessFollowsQuorum (issue 14): with 2 of 3 nodes down the
// instance says not ready (no stream leader), and ready again once they
// are back.
func TestReadinessFollowsQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster failover test")
	}
	c := newTestCluster(t)
	up := newUpstream(t, always(200))
	in := startInstance(t, failoverYAML(c.urls(), up.URL))
	in.waitReady(t, 30*time.Second)
	out := leader(t, in.svcJS(t, c.urls()), topology.StreamOut)
	// Stop the two nodes other than the one the instance is connected to
	// is not needed: any two leave no quorum.
	stopped := []int{out, (out + 1) % 3}
	for _, i := range stopped {
		c.stop(i)
	}
	var rep service.Readiness
	waitUntilWithin(t, 20*time.Second, "not ready without quorum", func() bool {
		rep = in.svc.Readiness(context.Background())
		return rep.Status != "ready"
	})
	t.Logf("without quorum: %s", rep.Reason)
	for _, i := range stopped {
		c.start(i)
	}
	in.waitReady(t, 60*time.Second)
}

// TestSimultaneousStartOnFreshCluster (issue 14): two instances started at
// the same moment on a fresh cluster with R3 streams both become ready.
func TestSimultaneousStartOnFreshCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster failover test")
	}
	c := newTestCluster(t)
	up := newUpstream(t, always(200))
	yaml := failoverYAML(c.urls(), up.URL)
	cfgs := []string{yaml, yaml}
	type started struct {
		svc *service.Service
		err error
	}
	res := make(chan started, len(cfgs))
	for _, y := range cfgs {
		cfg := loadConfig(t, y)
		go func() {
			svc, err := service.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
			res <- started{svc, err}
		}()
	}
	var svcs []*service.Service
	for range cfgs {
		r := <-res
		if r.err != nil {
			t.Errorf("start: %v", r.err)
			continue
		}
		svcs = append(svcs, r.svc)
	}
	for _, svc := range svcs {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		in := &instance{svc: svc}
		in.waitReady(t, 30*time.Second)
	}
}

func (in *instance) svcJS(t *testing.T, urls string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	return js
}

// TestKeptOutcomeAfterPublishFailure (issue 14, item 1): when the outcome
// cannot be published (here BW_OUT is gone for a while), the redeliveries
// use up none of the message's attempts and do not call the target again:
// the outcome reached is kept and published once the stream is back.
func TestKeptOutcomeAfterPublishFailure(t *testing.T) {
	t.Setenv("BW_STREAMS_INTERNAL_RETRY_DELAY", "100ms")
	t.Setenv("BW_STREAMS_BROKER_TIMEOUT", "500ms")
	up := newUpstream(t, always(200))
	// max_attempts 1: under attempt counting by deliveries the second
	// delivery would already be "attempts exhausted".
	e := newEnv(t, "routes:"+strings.Replace(routeYAML("kept", up.URL, ""), "max_attempts: 3", "max_attempts: 1", 1))
	ctx := context.Background()
	sub, err := e.nc.SubscribeSync(topology.Out("kept"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.js.DeleteStream(ctx, topology.StreamOut); err != nil {
		t.Fatal(err)
	}
	e.run()
	e.publish("kept", "k-1", `{"id":"k-1"}`)
	waitUntil(t, "three failed outcome publishes", func() bool {
		return strings.Count(e.logs.String(), `"outcome_kept":"ok"`) >= 3
	})
	if err := topology.Ensure(ctx, e.js, topology.Options{Replicas: 1, DuplicateWindow: time.Minute, OutMaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no outcome after BW_OUT came back: %v", err)
	}
	if m.Header.Get(headers.Outcome) != headers.OutcomeOK || m.Header.Get(headers.Attempts) != "1" {
		t.Errorf("outcome %q attempts %q, want ok after 1 attempt", m.Header.Get(headers.Outcome), m.Header.Get(headers.Attempts))
	}
	if n := up.callsOf("k-1"); n != 1 {
		t.Errorf("the target was called %d times, want 1: the kept outcome was not used", n)
	}
	if e.logLine("publishing the outcome an earlier delivery reached", `"message_id":"k-1"`) == "" {
		t.Error("no log line says the kept outcome was published")
	}
}
