package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/service"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// applyRoutes does what `runtime route apply -f` does: parse and validate
// the routes file as a whole, then store every route.
func applyRoutes(t *testing.T, e *env, yaml string) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadClient("", nil)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := config.ReadRoutesFile(path)
	if err != nil {
		return err
	}
	routes, err := cfg.ParseRoutes(docs)
	if err != nil {
		return err
	}
	kv, err := e.js.KeyValue(context.Background(), topology.BucketRoutes)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range routes {
		if _, err := kv.Put(context.Background(), r.Name, docs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}

// serving waits (bounded) until every instance reports route consuming
// (or, with want false, not there) and returns how long it took.
func serving(t *testing.T, route string, want bool, svcs ...*service.Service) time.Duration {
	t.Helper()
	t0 := time.Now()
	for time.Since(t0) < 10*time.Second {
		all := true
		for _, s := range svcs {
			h, ok := s.Readiness(context.Background()).Routes[route]
			if ok != want || (want && !h.Consuming) {
				all = false
			}
		}
		if all {
			return time.Since(t0)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("route %q serving=%v not reached on every instance within 10s", route, want)
	return 0
}

// TestLiveRoutes (issue 13, item 1): routes are added, changed and removed
// without a restart, on every instance within a second; an invalid route
// is refused whole; a removed route's waiting messages are dead-lettered
// with a clear reason.
func TestLiveRoutes(t *testing.T) {
	one := newUpstream(t, always(200))
	two := newUpstream(t, always(200))
	e := newEnv(t, "routes:"+routeYAML("static", one.URL, ""))
	e.run()
	cfg := loadConfig(t, fmt.Sprintf("nats:\n  url: %s\nhttp:\n  listen: \"\"\nroutes:%s", e.svc.NATSURL(), routeYAML("static", one.URL, "")))
	other, err := service.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- other.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// Add.
	if err := applyRoutes(t, e, "routes:"+routeYAML("live", one.URL, "")); err != nil {
		t.Fatal(err)
	}
	if d := serving(t, "live", true, e.svc, other); d > time.Second {
		t.Errorf("the new route served on every instance after %v, want within 1s", d)
	}
	e.publish("live", "l-1", `{"id":"l-1"}`)
	if m := e.outcome("l-1"); m.Header.Get(headers.Outcome) != headers.OutcomeOK || one.callsOf("l-1") != 1 {
		t.Fatalf("l-1: %v, %d calls", m.Header, one.callsOf("l-1"))
	}

	// Change: the new target serves new messages.
	if err := applyRoutes(t, e, "routes:"+routeYAML("live", two.URL, "")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the changed route", func() bool {
		e.publish("live", fmt.Sprintf("probe-%d", time.Now().UnixNano()), `{"id":"probe"}`)
		return two.callsOf("probe") > 0
	})
	e.publish("live", "l-2", `{"id":"l-2"}`)
	if m := e.outcome("l-2"); m.Header.Get(headers.Outcome) != headers.OutcomeOK || two.callsOf("l-2") != 1 {
		t.Fatalf("l-2 did not reach the new target: %v", m.Header)
	}

	// In-flight work survives a change: messages taken before it finish
	// with the route they started with, once each.
	slow := newSlowUpstream(t, 300*time.Millisecond)
	if err := applyRoutes(t, e, "routes:"+routeYAML("slowlive", slow.URL, "")); err != nil {
		t.Fatal(err)
	}
	serving(t, "slowlive", true, e.svc, other)
	for i := range 20 {
		e.publish("slowlive", fmt.Sprintf("s-%d", i), `{"id":"s"}`)
	}
	time.Sleep(100 * time.Millisecond) // some are in flight
	if err := applyRoutes(t, e, "routes:"+routeYAML("slowlive", two.URL, "")); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		id := fmt.Sprintf("s-%d", i)
		if m := e.outcome(id); m.Header.Get(headers.Outcome) != headers.OutcomeOK || e.count(id) != 1 {
			t.Errorf("%s: outcome %q, %d outcomes", id, m.Header.Get(headers.Outcome), e.count(id))
		}
	}

	// An invalid route is refused whole, naming the field; nothing changes.
	err = applyRoutes(t, e, "routes:"+routeYAML("live", "ftp://nowhere", "")+routeYAML("another", one.URL, ""))
	if err == nil || !strings.Contains(err.Error(), "routes[0].target.http.url") {
		t.Fatalf("invalid routes file: %v", err)
	}
	if _, ok := e.svc.Readiness(context.Background()).Routes["another"]; ok {
		t.Error("a route of a refused file was applied")
	}

	// Remove: the route stops on every instance; a message waiting for it
	// is dead-lettered, saying no route serves it.
	kv, _ := e.js.KeyValue(context.Background(), topology.BucketRoutes)
	if err := kv.Delete(context.Background(), "live"); err != nil {
		t.Fatal(err)
	}
	if d := serving(t, "live", false, e.svc, other); d > time.Second {
		t.Errorf("the removed route stopped after %v, want within 1s", d)
	}
	e.publish("live", "l-3", `{"id":"l-3"}`)
	if m := e.outcome("l-3"); m.Header.Get(headers.Outcome) != headers.OutcomeDead || m.Header.Get(headers.ErrorKind) != "unknown_route" {
		t.Errorf("l-3 after removal: %v", m.Header)
	}
	// Put back, the route consumes again (the unrouted consumer gave its
	// subject up).
	if err := applyRoutes(t, e, "routes:"+routeYAML("live", two.URL, "")); err != nil {
		t.Fatal(err)
	}
	serving(t, "live", true, e.svc, other)
	e.publish("live", "l-4", `{"id":"l-4"}`)
	if m := e.outcome("l-4"); m.Header.Get(headers.Outcome) != headers.OutcomeOK {
		t.Errorf("l-4 after the route came back: %v", m.Header)
	}

	// Removing a route lets the work it had taken finish.
	for i := range 5 {
		e.publish("slowlive", fmt.Sprintf("r-%d", i), `{"id":"r"}`)
	}
	if err := applyRoutes(t, e, "routes:"+routeYAML("slowlive", slow.URL, "")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	for i := range 5 {
		e.publish("slowlive", fmt.Sprintf("q-%d", i), `{"id":"q"}`)
	}
	time.Sleep(100 * time.Millisecond) // taken, waiting on the slow target
	if err := kv.Delete(context.Background(), "slowlive"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		id := fmt.Sprintf("q-%d", i)
		if m := e.outcome(id); m.Header.Get(headers.Outcome) != headers.OutcomeOK || e.count(id) != 1 {
			t.Errorf("%s, in flight at the removal: outcome %q (%s), %d outcomes", id, m.Header.Get(headers.Outcome), m.Header.Get(headers.Error), e.count(id))
		}
	}

	// The config file's route was never touched.
	if _, ok := e.svc.Readiness(context.Background()).Routes["static"]; !ok {
		t.Error("the static route is gone")
	}
}

// newSlowUpstream answers 200 after d.
func newSlowUpstream(t *testing.T, d time.Duration) *testkit.Upstream {
	up := testkit.NewUpstream(t)
	up.Set(testkit.Reply{Body: `{"ok":true}`, Delay: d})
	return up
}
