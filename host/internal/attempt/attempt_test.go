package attempt_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/internal/attempt/attempttest"
	"github.com/breakwater-dev/breakwater/host/internal/render"
	"github.com/breakwater-dev/breakwater/host/testkit"
)

func newCore(t *testing.T) *attempt.Core {
	_, js := testkit.JetStream(t).Connect(t)
	return attempttest.Core(t, js)
}

func route(t *testing.T, ups []*testkit.Upstream, stub string, key string, mode attempt.CacheMode) *attempt.Route {
	var urls []string
	for _, u := range ups {
		urls = append(urls, u.URL)
	}
	return attempttest.Route(t, attempttest.Spec{URLs: urls, Stub: stub, CacheKey: key, CacheMode: mode})
}

func request(payload string, n uint32) *attempt.Request {
	return &attempt.Request{Msg: &render.Message{Route: "r", Subject: "bw.in.r", MessageID: "m", Payload: []byte(payload)}, FirstSeen: time.Now(), Attempt: n}
}

func upstream(t *testing.T, status int, body string) *testkit.Upstream {
	u := testkit.NewUpstream(t)
	u.Set(testkit.Reply{Status: status, Body: body})
	return u
}

func TestAttempt(t *testing.T) {
	ctx := context.Background()
	c := newCore(t)
	tests := []struct {
		name     string
		ups      []*testkit.Upstream
		stub     string
		key      string
		payload  string
		attempt  uint32
		outcome  string
		target   string
		errKinds []abi.ErrorKind
		reason   string
	}{
		{"ok", []*testkit.Upstream{upstream(t, 200, "fine")}, "", "", `{}`, 1, headers.OutcomeOK, "t0", nil, ""},
		{"failover to the second target", []*testkit.Upstream{upstream(t, 503, "down"), upstream(t, 200, "fine")}, "", "", `{}`, 1, headers.OutcomeOK, "t1", nil, ""},
		{"retry asked", []*testkit.Upstream{upstream(t, 503, "down")}, "", "", `{}`, 1, "", "t0", []abi.ErrorKind{abi.ErrorStatus}, "retryable status"},
		{"every target of a failover fails", []*testkit.Upstream{upstream(t, 503, "a"), upstream(t, 500, "b")}, "", "", `{}`, 1, "", "t1", []abi.ErrorKind{abi.ErrorStatus, abi.ErrorStatus}, "retryable status"},
		{"last attempt: stub", []*testkit.Upstream{upstream(t, 503, "down")}, "stubbed", "", `{}`, 3, headers.OutcomeStub, "t0", []abi.ErrorKind{abi.ErrorStatus}, "attempts exhausted"},
		{"last attempt: dead", []*testkit.Upstream{upstream(t, 503, "down")}, "", "", `{}`, 3, headers.OutcomeDead, "t0", []abi.ErrorKind{abi.ErrorStatus}, "no fresh cached value and no stub"},
		{"permanent failure", []*testkit.Upstream{upstream(t, 404, "no")}, "", "", `{}`, 1, headers.OutcomeDead, "t0", []abi.ErrorKind{abi.ErrorStatus}, "404"},
		{"bad cache key", []*testkit.Upstream{upstream(t, 200, "fine")}, "", "{{.payload.missing.deeper}}", `not json`, 1, headers.OutcomeDead, "", []abi.ErrorKind{abi.ErrorBadInput}, "bad input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Attempt(ctx, route(t, tt.ups, tt.stub, tt.key, attempt.CacheFallback), request(tt.payload, tt.attempt))
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tt.outcome || res.Target != tt.target {
				t.Fatalf("outcome %q from %q; want %q from %q (%s)", res.Outcome, res.Target, tt.outcome, tt.target, res.Reason)
			}
			if len(res.Errors) != len(tt.errKinds) {
				t.Fatalf("errors %+v; want kinds %v", res.Errors, tt.errKinds)
			}
			for i, k := range tt.errKinds {
				if res.Errors[i].Kind != k || res.Errors[i].Attempt != tt.attempt {
					t.Errorf("error %d: %+v; want kind %s of attempt %d", i, res.Errors[i], k, tt.attempt)
				}
			}
			if !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("reason %q; want it to hold %q", res.Reason, tt.reason)
			}
			if res.Outcome == "" && res.RetryDelay <= 0 {
				t.Errorf("a retry without a delay")
			}
		})
	}
}

func TestAttemptCache(t *testing.T) {
	ctx := context.Background()
	c := newCore(t)
	up := upstream(t, 200, `{"v":1}`)

	// Read-through: the first call stores, the second is a fresh hit.
	rt := route(t, []*testkit.Upstream{up}, "", "{{.payload.sku}}", attempt.CacheReadThrough)
	if res, _ := c.Attempt(ctx, rt, request(`{"sku":"a"}`, 1)); res.Outcome != headers.OutcomeOK {
		t.Fatalf("miss: %+v", res)
	}
	res, _ := c.Attempt(ctx, rt, request(`{"sku":"a"}`, 1))
	if res.Outcome != headers.OutcomeCached || string(res.Payload) != `{"v":1}` || res.Attempts != 0 || up.Calls() != 1 {
		t.Fatalf("fresh hit: %+v after %d calls", res, up.Calls())
	}

	// Fallback mode never serves the cache while the target answers, and
	// serves it when the target fails.
	fb := route(t, []*testkit.Upstream{up}, "", "{{.payload.sku}}", attempt.CacheFallback)
	if res, _ := c.Attempt(ctx, fb, request(`{"sku":"a"}`, 1)); res.Outcome != headers.OutcomeOK || up.Calls() != 2 {
		t.Fatalf("fallback mode, target up: %+v", res)
	}
	up.Set(testkit.Reply{Status: 503})
	res, _ = c.Attempt(ctx, fb, request(`{"sku":"a"}`, 3))
	if res.Outcome != headers.OutcomeCached || res.Reason == "" {
		t.Fatalf("fallback mode, target down on the last attempt: %+v", res)
	}
}

func TestAttemptDeadline(t *testing.T) {
	c := newCore(t)
	r := route(t, []*testkit.Upstream{upstream(t, 503, "down")}, "stubbed", "", attempt.CacheFallback)
	req := request(`{}`, 1)
	req.Deadline = time.Now().Add(40 * time.Millisecond) // less than the first backoff (50ms)
	res, err := c.Attempt(context.Background(), r, req)
	if err != nil || res.Outcome != headers.OutcomeStub || !strings.Contains(res.Reason, "no time left before the deadline") {
		t.Fatalf("%+v, %v", res, err)
	}

	// Fallback alone (the sync path's overflow): no call.
	up := upstream(t, 200, "fine")
	r = route(t, []*testkit.Upstream{up}, "stubbed", "", attempt.CacheFallback)
	res, err = c.Fallback(context.Background(), r, request(`{}`, 1), "busy", []abi.AttemptError{attempt.Error(0, abi.ErrorBulkheadFull, 0, "full")})
	if err != nil || res.Outcome != headers.OutcomeStub || up.Calls() != 0 || res.Attempts != 0 {
		t.Fatalf("fallback only: %+v, %v, %d calls", res, err, up.Calls())
	}
}
