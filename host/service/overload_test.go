package service_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/client"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/testkit"
)

// syncRoute is a route for sync tests: one attempt, no cache.
func syncRoute(name, url, extra string) string {
	return fmt.Sprintf(`
  - name: %s
    target:
      http:
        url: %s
%s    timeout: 2s
    max_attempts: 1
`, name, url, extra)
}

func TestBreakerOpensAndCloses(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	up := testkit.NewUpstream(t)
	up.Respond(func(*http.Request, []byte, int) testkit.Reply {
		if failing.Load() {
			return testkit.Reply{Status: 503, Body: "down\n"}
		}
		return testkit.Reply{Body: `{"ok":true}`}
	})
	e := newEnv(t, "routes:"+syncRoute("guarded", up.URL, `      breaker:
        failure_threshold: 3
        reset_timeout: 300ms
`))
	e.run()
	c := newClient(t, e)
	kinds := func() string {
		_, err := call(t, c, "guarded", `{}`, 5*time.Second)
		var ce *client.CallError
		if errors.As(err, &ce) {
			return ce.Kind
		}
		if err != nil {
			t.Fatal(err)
		}
		return "ok"
	}
	for i := range 3 {
		if k := kinds(); k != "status" {
			t.Fatalf("call %d: %s, want status (the target's 503)", i+1, k)
		}
	}
	before := int64(up.Calls())
	for i := range 5 {
		if k := kinds(); k != "breaker_open" {
			t.Fatalf("call %d after 3 failures: %s, want breaker_open", i+1, k)
		}
	}
	if int64(up.Calls()) != before {
		t.Fatalf("an open breaker let %d calls reach the target", int64(up.Calls())-before)
	}
	failing.Store(false)
	// After the reset timeout a probe goes through and closes the breaker.
	var k string
	for i := 0; i < 200; i++ {
		if k = kinds(); k == "ok" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if k != "ok" {
		t.Fatalf("breaker never closed: last %s", k)
	}
	if line := e.logLine(`"breaker state changed"`, `"to":"open"`); line == "" {
		t.Errorf("no log line for the breaker opening")
	}
	if line := e.logLine(`"breaker state changed"`, `"to":"closed"`); line == "" {
		t.Errorf("no log line for the breaker closing")
	}
}

// TestBulkheadIsolation: route A's target hangs and fills A's bulkhead;
// route B keeps answering meanwhile, and A's excess calls fail fast with
// bulkhead_full instead of queueing.
func TestBulkheadIsolation(t *testing.T) {
	release := make(chan struct{})
	var inA atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inA.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	fast := newUpstream(t, always(200))
	e := newEnv(t, "routes:"+syncRoute("route_a", hang.URL, `      bulkhead:
        max_concurrent: 2
`)+syncRoute("route_b", fast.URL, `      bulkhead:
        max_concurrent: 2
`))
	e.run()
	c := newClient(t, e)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = call(t, c, "route_a", `{}`, 3*time.Second)
		}()
	}
	t.Cleanup(wg.Wait)
	for i := 0; i < 500 && inA.Load() < 2; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if inA.Load() < 2 {
		t.Fatal("route A's calls never reached its target")
	}
	// A's bulkhead is full: a third call fails fast, not after the hang.
	_, err := call(t, c, "route_a", `{}`, 3*time.Second)
	var ce *client.CallError
	if !errors.As(err, &ce) || ce.Kind != "bulkhead_full" {
		t.Fatalf("third call to the hung target: %v, want bulkhead_full", err)
	}
	// B is untouched while A hangs.
	for i := range 20 {
		res, err := call(t, c, "route_b", `{"id":"b"}`, 3*time.Second)
		if err != nil || res.Outcome != headers.OutcomeOK {
			t.Fatalf("route B call %d while A hangs: %v", i, err)
		}
	}
	if inA.Load() != 2 {
		t.Fatalf("%d calls reached A's target, want the bulkhead's 2", inA.Load())
	}
}

func TestHedgingTakesTheFastAnswer(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 { // the first request hangs
			select {
			case <-release:
			case <-r.Context().Done():
			}
			fmt.Fprint(w, `{"answer":"slow"}`)
			return
		}
		fmt.Fprint(w, `{"answer":"fast"}`)
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() { close(release) })
	e := newEnv(t, "routes:"+syncRoute("hedged", up.URL, "")+`    hedge:
      delay: 20ms
      max_attempts: 2
`)
	e.run()
	c := newClient(t, e)
	res, err := call(t, c, "hedged", `{}`, 5*time.Second)
	if err != nil || !strings.Contains(string(res.Payload), "fast") {
		t.Fatalf("hedged call: %v %s", err, res.Payload)
	}
}

func TestRateLimitEnforced(t *testing.T) {
	up := testkit.NewUpstream(t)
	up.Set(testkit.Reply{Body: `{}`})
	e := newEnv(t, "routes:"+syncRoute("limited", up.URL, "")+`    rate_limit:
      per_second: 0.01
      burst: 3
`)
	e.run()
	c := newClient(t, e)
	ok, limited := 0, 0
	for range 8 {
		_, err := call(t, c, "limited", `{}`, 5*time.Second)
		var ce *client.CallError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ce) && ce.Kind == "rate_limited" && ce.Status == 429:
			limited++
		default:
			t.Fatalf("unexpected: %v", err)
		}
	}
	if ok != 3 || limited != 5 || int64(up.Calls()) != 3 {
		t.Fatalf("ok %d limited %d hits %d; want 3, 5, 3", ok, limited, int64(up.Calls()))
	}
}
