package service_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/flagstore"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/testkit"
)

// twoTargets is a route over targets primary and replica.
func twoTargets(name, primary, replica, extra string) string {
	return fmt.Sprintf(`
  - name: %s
    targets:
      - name: primary
        http: {url: %s}
      - name: replica
        http: {url: %s}
    timeout: 1s
    max_attempts: 2
    backoff: {initial: 10ms, max: 20ms, multiplier: 2}
%s`, name, primary, replica, extra)
}

func TestFailoverWithinAnAttempt(t *testing.T) {
	primary, replica := testkit.NewUpstream(t), testkit.NewUpstream(t)
	primary.Set(testkit.Reply{Status: 503, Body: "down"})
	replica.Set(testkit.Reply{Body: `{"from":"replica"}`})
	e := newEnv(t, "routes:"+twoTargets("stock", primary.URL, replica.URL, ""))
	e.run()

	e.publish("stock", "m1", `{"id":"m1"}`)
	out := e.outcome("m1")
	if got := out.Header.Get(headers.Outcome); got != headers.OutcomeOK || out.Header.Get(headers.Target) != "replica" ||
		out.Header.Get(headers.Attempts) != "1" || string(out.Data) != `{"from":"replica"}` {
		t.Fatalf("async: outcome %s from %q after %s attempts: %s", got, out.Header.Get(headers.Target), out.Header.Get(headers.Attempts), out.Data)
	}
	if primary.Calls() != 1 || replica.Calls() != 1 {
		t.Fatalf("calls: primary %d, replica %d; want 1 each (failover within the attempt)", primary.Calls(), replica.Calls())
	}
	if e.logLine(`"outcome":"ok"`, `"target":"replica"`) == "" {
		t.Error("the outcome log line does not name the target that answered")
	}

	c := newClient(t, e)
	res, err := call(t, c, "stock", `{"id":"s1"}`, 5*time.Second)
	if err != nil || res.Outcome != headers.OutcomeOK || res.Header.Get(headers.Target) != "replica" || res.Attempts != 1 {
		t.Fatalf("sync: %+v, %v", res, err)
	}

	// The kill switch of one target: the call goes to the other at once.
	primary.Set(testkit.Reply{Body: `{"from":"primary"}`})
	ctx := context.Background()
	kv, err := flagstore.Bucket(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	if err := flagstore.Set(ctx, kv, "target.replica.enabled", "false"); err != nil {
		t.Fatal(err)
	}
	before := replica.Calls()
	waitUntil(t, "the switch applies", func() bool {
		res, err := call(t, c, "stock", `{"id":"s2"}`, 5*time.Second)
		return err == nil && res.Header.Get(headers.Target) == "primary"
	})
	if err := flagstore.Set(ctx, kv, "target.primary.enabled", "false"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "both targets switched off", func() bool {
		res, _ := call(t, c, "stock", `{"id":"s3"}`, 5*time.Second)
		return res != nil && res.Outcome == headers.OutcomeError && strings.Contains(string(res.Payload), "switched off")
	})
	if replica.Calls() != before {
		t.Errorf("the switched-off replica was called %d times", replica.Calls()-before)
	}
}

// Every target failing on every attempt still ends in one terminal outcome,
// with every target's error of every attempt in the dead letter.
func TestFailoverChainExhausted(t *testing.T) {
	primary, replica := testkit.NewUpstream(t), testkit.NewUpstream(t)
	primary.Set(testkit.Reply{Status: 503, Body: "primary down"})
	replica.Set(testkit.Reply{Status: 502, Body: "replica down"})
	e := newEnv(t, "routes:"+twoTargets("stock", primary.URL, replica.URL, ""))
	e.run()
	e.publish("stock", "dead-1", `{"id":"dead-1"}`)
	out := e.outcome("dead-1")
	if out.Header.Get(headers.Outcome) != headers.OutcomeDead || out.Header.Get(headers.Attempts) != "2" {
		t.Fatalf("outcome %s after %s attempts; want dead after 2", out.Header.Get(headers.Outcome), out.Header.Get(headers.Attempts))
	}
	time.Sleep(200 * time.Millisecond)
	if n := e.count("dead-1"); n != 1 {
		t.Fatalf("%d outcomes; want exactly one", n)
	}
	dl := e.deadLetters("stock", 1)
	if len(dl) != 1 || dl[0].Record == nil {
		t.Fatalf("dead letters: %+v", dl)
	}
	errs := dl[0].Record.Errors
	if len(errs) != 4 || dl[0].Record.Attempts != 2 {
		t.Fatalf("history: %d errors over %d attempts; want 4 over 2: %+v", len(errs), dl[0].Record.Attempts, errs)
	}
	for i, want := range []struct {
		attempt uint32
		target  string
	}{{1, "primary"}, {1, "replica"}, {2, "primary"}, {2, "replica"}} {
		if errs[i].Attempt != want.attempt || !strings.Contains(errs[i].Message, `target "`+want.target+`"`) || errs[i].Kind != abi.ErrorStatus {
			t.Errorf("error %d: %+v; want attempt %d of target %s", i, errs[i], want.attempt, want.target)
		}
	}
}

func TestRoundRobinSpreadsAttempts(t *testing.T) {
	a, b := testkit.NewUpstream(t), testkit.NewUpstream(t)
	e := newEnv(t, "routes:"+twoTargets("rr", a.URL, b.URL, "    strategy: round_robin\n"))
	e.run()
	for i := range 20 {
		e.publish("rr", fmt.Sprintf("rr-%d", i), `{}`)
	}
	for i := range 20 {
		e.outcome(fmt.Sprintf("rr-%d", i))
	}
	if a.Calls() != 10 || b.Calls() != 10 {
		t.Fatalf("calls %d and %d; want 10 each", a.Calls(), b.Calls())
	}
}

func TestOutlierEjection(t *testing.T) {
	primary, replica := testkit.NewUpstream(t), testkit.NewUpstream(t)
	primary.Set(testkit.Reply{Status: 500, Body: "broken"})
	e := newEnv(t, "routes:"+twoTargets("ej", primary.URL, replica.URL, "    outlier: {consecutive_failures: 3, base_ejection_time: 1m}\n"))
	e.run()
	for i := range 10 {
		id := fmt.Sprintf("ej-%d", i)
		e.publish("ej", id, `{}`)
		if out := e.outcome(id); out.Header.Get(headers.Target) != "replica" {
			t.Fatalf("%s answered by %q", id, out.Header.Get(headers.Target))
		}
	}
	if primary.Calls() != 3 {
		t.Fatalf("the failing primary was called %d times; want 3 (then ejected, tried last)", primary.Calls())
	}
	if e.logLine("target ejected from balancing", `"target":"primary"`) == "" {
		t.Error("no log line for the ejection")
	}
	if m := scrape(t, "http://"+e.svc.HTTPAddr()+"/metrics"); !strings.Contains(m, `breakwater_target_ejected{route="ej",target="primary"} 1`) {
		t.Error("the ejection is not in the metrics")
	}
}

func TestReadThroughCache(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	up := testkit.NewUpstream(t)
	up.Respond(func(r *http.Request, body []byte, _ int) testkit.Reply {
		mu.Lock()
		calls[string(body)]++
		n := calls[string(body)]
		mu.Unlock()
		if strings.Contains(string(body), "fail") && n > 1 {
			return testkit.Reply{Status: 503, Body: "down"}
		}
		return testkit.Reply{Body: fmt.Sprintf(`{"call":%d}`, n), Delay: 150 * time.Millisecond}
	})
	callsOf := func(body string) int { mu.Lock(); defer mu.Unlock(); return calls[body] }
	e := newEnv(t, "routes:"+fmt.Sprintf(`
  - name: price
    target: {http: {url: %s}}
    timeout: 1s
    max_attempts: 1
    concurrency: 16
    cache: {key: '{{.payload.sku}}', mode: read_through, fresh: 300ms, stale_if_error: 1h}
`, up.URL))
	e.run()
	c := newClient(t, e)

	// A miss calls the target; a hit within fresh does not.
	res, err := call(t, c, "price", `{"sku":"a"}`, 5*time.Second)
	if err != nil || res.Outcome != headers.OutcomeOK {
		t.Fatalf("miss: %+v, %v", res, err)
	}
	res, err = call(t, c, "price", `{"sku":"a"}`, 5*time.Second)
	if err != nil || res.Outcome != headers.OutcomeCached || res.Header.Get(headers.CacheAge) == "" || string(res.Payload) != `{"call":1}` {
		t.Fatalf("fresh hit: %+v, %v", res, err)
	}
	e.publish("price", "async-hit", `{"sku":"a"}`)
	if out := e.outcome("async-hit"); out.Header.Get(headers.Outcome) != headers.OutcomeCached || out.Header.Get(headers.Attempts) != "0" {
		t.Fatalf("async fresh hit: %s after %s attempts", out.Header.Get(headers.Outcome), out.Header.Get(headers.Attempts))
	}
	if n := callsOf(`{"sku":"a"}`); n != 1 {
		t.Fatalf("target called %d times; want 1", n)
	}

	// Stale: the target is called; when it fails, the stale value serves.
	if _, err := call(t, c, "price", `{"sku":"fail"}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // past fresh
	res, err = call(t, c, "price", `{"sku":"fail"}`, 5*time.Second)
	if err != nil || res.Outcome != headers.OutcomeCached || callsOf(`{"sku":"fail"}`) != 2 {
		t.Fatalf("stale if error: %+v, %v after %d calls", res, err, callsOf(`{"sku":"fail"}`))
	}

	// Concurrent identical misses call once, on both paths.
	var wg sync.WaitGroup
	outcomes := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := call(t, c, "price", `{"sku":"hot"}`, 5*time.Second)
			if err != nil {
				outcomes <- err.Error()
				return
			}
			outcomes <- res.Outcome
		}()
	}
	wg.Wait()
	close(outcomes)
	for o := range outcomes {
		if o != headers.OutcomeOK && o != headers.OutcomeCached {
			t.Errorf("coalesced sync call: %s", o)
		}
	}
	if n := callsOf(`{"sku":"hot"}`); n != 1 {
		t.Errorf("8 concurrent sync misses called the target %d times; want 1", n)
	}
	for i := range 8 {
		e.publish("price", fmt.Sprintf("cold-%d", i), `{"sku":"cold"}`)
	}
	for i := range 8 {
		if out := e.outcome(fmt.Sprintf("cold-%d", i)); out.Header.Get(headers.Outcome) == headers.OutcomeDead {
			t.Errorf("coalesced async message dead: %s", out.Header.Get(headers.Error))
		}
	}
	if n := callsOf(`{"sku":"cold"}`); n != 1 {
		t.Errorf("8 concurrent async misses called the target %d times; want 1", n)
	}
	if m := scrape(t, "http://"+e.svc.HTTPAddr()+"/metrics"); !strings.Contains(m, `breakwater_cache_coalesced_total{route="price"}`) {
		t.Error("coalesced calls are not counted")
	}
}

func TestClassifyModule(t *testing.T) {
	up := testkit.NewUpstream(t)
	up.Respond(func(r *http.Request, body []byte, _ int) testkit.Reply {
		switch {
		case strings.Contains(string(body), "soft-error"):
			return testkit.Reply{Body: `{"error":"quota exceeded"}`, Header: http.Header{"Content-Type": {"application/json"}}}
		case strings.Contains(string(body), "exists"):
			return testkit.Reply{Status: 409, Body: `{"id":"42","note":"already created"}`}
		}
		return testkit.Reply{Body: `{"ok":true}`}
	})
	e := newEnv(t, moduleDir(t, "classify-json-error")+"routes:"+fmt.Sprintf(`
  - name: create
    target: {http: {url: %s}}
    timeout: 1s
    max_attempts: 2
    backoff: {initial: 10ms, max: 20ms, multiplier: 2}
    modules:
      classify: {name: classify-json-error, config: {success_statuses: [409]}}
`, up.URL))
	e.run()
	for _, tt := range []struct{ id, outcome, kind string }{
		{"plain", headers.OutcomeOK, ""},
		{"exists", headers.OutcomeOK, ""},
		{"soft-error", headers.OutcomeDead, string(abi.ErrorClassifiedRetryable)},
	} {
		e.publish("create", tt.id, `{"id":"`+tt.id+`"}`)
		out := e.outcome(tt.id)
		if out.Header.Get(headers.Outcome) != tt.outcome || out.Header.Get(headers.ErrorKind) != tt.kind {
			t.Errorf("%s: outcome %s, kind %q (%s); want %s, %q", tt.id, out.Header.Get(headers.Outcome), out.Header.Get(headers.ErrorKind),
				out.Header.Get(headers.Error), tt.outcome, tt.kind)
		}
	}
	if out := e.outcome("soft-error"); out.Header.Get(headers.Attempts) != "2" || !strings.Contains(out.Header.Get(headers.Error), "quota exceeded") {
		t.Errorf("a body error is retried, and its reason kept: attempts %s, error %q", out.Header.Get(headers.Attempts), out.Header.Get(headers.Error))
	}
	c := newClient(t, e)
	res, err := call(t, c, "create", `{"id":"exists"}`, 5*time.Second)
	if err != nil || res.Outcome != headers.OutcomeOK || !strings.Contains(string(res.Payload), "already created") {
		t.Fatalf("sync 409 classified success: %+v, %v", res, err)
	}
	res, err = call(t, c, "create", `{"id":"soft-error"}`, 5*time.Second)
	if err == nil || res == nil || res.Outcome != headers.OutcomeError || res.Header.Get(headers.Status) != "502" {
		t.Fatalf("sync classified failure: %+v, %v", res, err)
	}
}
