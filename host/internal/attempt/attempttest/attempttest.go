package attempttest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/internal/balance"
	"github.com/breakwater-dev/breakwater/host/internal/cache"
	"github.com/breakwater-dev/breakwater/host/internal/decision"
	"github.com/breakwater-dev/breakwater/host/internal/render"
	"github.com/breakwater-dev/breakwater/host/internal/target"
	"github.com/breakwater-dev/breakwater/host/policy"
)

// Spec describes a test route.
type Spec struct {
	Name string   // default "r"
	URLs []string // one HTTP target each, named t0, t1, ...
	Stub string   // static stub payload ("": none)
	// CacheKey and CacheMode: a cache (Fresh 1m, MaxAge 1h) when the key is set.
	CacheKey  string
	CacheMode attempt.CacheMode
	// MaxAttempts defaults to 3, Deadline to 1s.
	MaxAttempts uint32
	Deadline    time.Duration
}

// Route builds the route of s with native policies: backoff from 50ms
// (no jitter), the default fallback, the static stub.
func Route(t testing.TB, s Spec) *attempt.Route {
	t.Helper()
	if s.Name == "" {
		s.Name = "r"
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = 3
	}
	if s.Deadline == 0 {
		s.Deadline = time.Second
	}
	var targets []attempt.Target
	for i, u := range s.URLs {
		h, err := target.NewHTTP("POST", u, nil, nil, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, attempt.Target{Name: "t" + string(rune('0'+i)), Caller: h})
	}
	backoff := &policy.BackoffRetry{Initial: 50 * time.Millisecond, Max: time.Second, Multiplier: 2}
	var stub *decision.Policy[abi.Stub]
	if s.Stub != "" {
		stub = decision.New(decision.Spec[abi.Stub]{Kind: decision.Stub, Route: s.Name, Native: func(context.Context, *abi.Input) abi.Stub { return abi.Stub{Payload: []byte(s.Stub)} }})
	}
	fb := policy.DefaultFallback{HasStub: s.Stub != ""}
	var cs attempt.CacheSpec
	if s.CacheKey != "" {
		tmpl, err := render.Parse("cache key", s.CacheKey)
		if err != nil {
			t.Fatal(err)
		}
		cs = attempt.CacheSpec{Key: tmpl, Mode: s.CacheMode, Fresh: time.Minute, MaxAge: time.Hour}
	}
	return &attempt.Route{
		Name: s.Name, Timeout: time.Second, MaxAttempts: s.MaxAttempts, Concurrency: 4, Deadline: s.Deadline,
		Targets: targets,
		Balance: balance.New(len(targets), balance.Options{}),
		Cache:   cs,
		Retry: decision.New(decision.Spec[abi.RetryDecision]{Kind: decision.Retry, Route: s.Name, Native: func(ctx context.Context, in *abi.Input) abi.RetryDecision {
			d, _ := backoff.DecideRetry(ctx, in)
			return d
		}}),
		Fallback: decision.New(decision.Spec[abi.FallbackDecision]{Kind: decision.Fallback, Route: s.Name, Native: func(ctx context.Context, in *abi.Input) abi.FallbackDecision {
			d, _ := fb.ChooseFallback(ctx, in)
			return d
		}}),
		Stub:          stub,
		ReplySubjects: []string{"_INBOX.>", "bw.reply.>"},
	}
}

// Core returns a core whose cache is bucket bw_cache on js (created if
// missing).
func Core(t testing.TB, js jetstream.JetStream) *attempt.Core {
	t.Helper()
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "bw_cache"})
	if err != nil {
		t.Fatal(err)
	}
	return attempt.New(attempt.Options{Cache: cache.New(kv, 5*time.Second), Observer: attempt.NopObserver{}})
}
