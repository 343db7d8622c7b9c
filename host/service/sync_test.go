package service_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/client"
	"github.com/breakwater-dev/breakwater/host/headers"
)

func newClient(t *testing.T, e *env) *client.Client {
	t.Helper()
	c, err := client.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	// Wait (bounded) for the sync subscriptions.
	for i := 0; i < 500; i++ {
		if e.svc.Ready(context.Background()) == nil {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("service not ready")
	return nil
}

func call(t *testing.T, c *client.Client, route, payload string, d time.Duration) (*client.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Call(ctx, route, []byte(payload))
}

func TestSyncOutcomes(t *testing.T) {
	up := newUpstream(t, func(id string, call int) int {
		if strings.HasPrefix(id, "flaky") && call == 1 {
			return 503
		}
		return 200
	})
	e := newEnv(t, "routes:"+routeYAML("quotes", up.URL, "")+routeYAML("stubbed", up.URL, `    stub:
      payload: '{"price":0}'
`))
	e.run()
	c := newClient(t, e)

	res, err := call(t, c, "quotes", `{"id":"a"}`, 5*time.Second)
	if err != nil || res.Outcome != headers.OutcomeOK || res.Attempts != 1 {
		t.Fatalf("healthy target: %+v, %v", res, err)
	}
	if res, err = call(t, c, "quotes", `{"id":"flaky"}`, 5*time.Second); err != nil || res.Outcome != headers.OutcomeOK || res.Attempts != 2 {
		t.Fatalf("retry within the deadline: %+v, %v", res, err)
	}
	up.setFail(always(503))
	res, err = call(t, c, "quotes", `{"id":"a"}`, 5*time.Second)
	if err != nil || res.Outcome != headers.OutcomeCached || !strings.Contains(string(res.Payload), `"id":"a"`) {
		t.Fatalf("down target with a cached value: %+v, %v", res, err)
	}
	if res, err = call(t, c, "stubbed", `{"id":"never-cached"}`, 5*time.Second); err != nil || res.Outcome != headers.OutcomeStub || string(res.Payload) != `{"price":0}` {
		t.Fatalf("down target with a stub: %+v, %v", res, err)
	}
	_, err = call(t, c, "quotes", `{"id":"never-cached"}`, 5*time.Second)
	var ce *client.CallError
	if !errors.As(err, &ce) || ce.Status != 502 || ce.Kind != "status" || ce.Attempts != 3 {
		t.Fatalf("down target, no cache, no stub: want a 502 status CallError after 3 attempts, got %v", err)
	}
	_, err = call(t, c, "quotes", `not json`, 5*time.Second)
	if !errors.As(err, &ce) || ce.Status != 400 || ce.Kind != "bad_input" {
		t.Fatalf("bad input: want 400 bad_input, got %v", err)
	}
}

// TestSyncDeadlineHonoured: a hanging target does not hold the caller past
// its deadline; the answer (an error, nothing cached) comes while the
// target is still hanging.
func TestSyncDeadlineHonoured(t *testing.T) {
	release := make(chan struct{})
	var hung = make(chan struct{}, 16)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	e := newEnv(t, "routes:"+strings.Replace(routeYAML("slow", hang.URL, ""), "timeout: 1s", "timeout: 3s", 1))
	e.run()
	c := newClient(t, e)
	_, err := call(t, c, "slow", `{"id":"x"}`, 300*time.Millisecond)
	var ce *client.CallError
	if !errors.As(err, &ce) || ce.Status != 504 || ce.Kind != "timeout" {
		t.Fatalf("want a 504 timeout CallError within the caller's deadline, got %v", err)
	}
	select {
	case <-hung:
	default:
		t.Fatal("the target was never called")
	}
}
