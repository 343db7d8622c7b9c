package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/textproto"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/policy"
	"github.com/breakwater-dev/breakwater/host/render"
	"github.com/breakwater-dev/breakwater/host/target"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// Route is a configured route ready to process messages.
type Route struct {
	Name        string
	Target      string // target name (shared guards and kill switches)
	Timeout     time.Duration
	MaxAttempts uint32
	Concurrency int
	Caller      target.Caller
	CacheKey    *render.Template // nil: the route does not cache
	CacheTTL    time.Duration
	// Deadline bounds a sync call end to end.
	Deadline time.Duration
	// Guard protects the target (nil: calls go straight to Caller).
	Guard Guard

	// Policies; the native ones serve when a module fails or is quarantined.
	Retry, NativeRetry       policy.Retry
	Fallback, NativeFallback policy.Fallback
	Stub                     policy.StubGenerator // nil: the route has no stub
	NativeStub               policy.StubGenerator // nil when there is no static stub

	// Module configs handed to modules in abi.Input.Config, per kind.
	RetryConfig, FallbackConfig, StubConfig []byte
	// Module names per kind ("" native), for logs and metrics.
	RetryModule, FallbackModule, StubModule string
	// ReplySubjects are the subjects a producer may name in Bw-Reply-To:
	// topology.ReplyNamespaces and the route's reply_subjects.
	ReplySubjects []string
	// ResponseHeaders says which of the target's response headers go on the
	// outcome and to policies.
	ResponseHeaders *target.HeaderFilter
}

// outcomeHeadroom is kept free in every outcome for the runtime's headers:
// a target answer may use the server's max_payload less this.
const outcomeHeadroom = 16 << 10

// maxResult is the largest target answer an outcome on nc can carry.
func maxResult(nc *nats.Conn) int {
	return max(int(nc.MaxPayload())-outcomeHeadroom, 1024)
}

// Guard protects a target from overload: rate limits, bulkhead, circuit
// breaker, hedging. Implemented by host/guard.
type Guard interface {
	// Call calls caller under the guards; refusals are *target.Error with
	// kind rate_limited, bulkhead_full or breaker_open.
	Call(ctx context.Context, caller target.Caller, req *target.Request) (*target.Response, error)
	// BreakerState is "closed", "open", "half_open", or "" without a breaker.
	BreakerState() string
}

// Switches says whether routes and targets are switched on, and which flags
// policy modules see. Implemented by host/flags.
type Switches interface {
	Enabled(route, target string) bool
	ForRoute(route string) map[string]string
}

// ModuleBinder gives the policy a route's module reference stands for. The
// returned policy may follow module versions as they are reloaded.
type ModuleBinder interface {
	RetryPolicy(ctx context.Context, route string, ref *config.ModuleRef) (policy.Retry, error)
	FallbackPolicy(ctx context.Context, route string, ref *config.ModuleRef) (policy.Fallback, error)
	StubPolicy(ctx context.Context, route string, ref *config.ModuleRef) (policy.StubGenerator, error)
}

// NewRoute builds a Route from its configuration. nc serves NATS targets;
// modules may be nil when no route names a module.
func NewRoute(ctx context.Context, rc *config.Route, nc *nats.Conn, modules ModuleBinder) (*Route, error) {
	r := &Route{
		Name:          rc.Name,
		Target:        rc.Target.Name,
		Timeout:       rc.Timeout,
		MaxAttempts:   uint32(rc.MaxAttempts),
		Concurrency:   rc.Concurrency,
		CacheTTL:      rc.Cache.TTL,
		Deadline:      rc.Deadline,
		ReplySubjects: append(append([]string(nil), topology.ReplyNamespaces...), rc.ReplySubjects...),
	}
	forward, err := target.NewHeaderFilter(rc.ForwardHeaders)
	if err != nil {
		return nil, fmt.Errorf("route %q: forward_headers: %w", rc.Name, err)
	}
	if r.ResponseHeaders, err = target.NewHeaderFilter(rc.ResponseHeaders); err != nil {
		return nil, fmt.Errorf("route %q: response_headers: %w", rc.Name, err)
	}
	switch {
	case rc.Target.HTTP != nil:
		h, err := target.NewHTTP(rc.Target.HTTP.Method, rc.Target.HTTP.URL, rc.Target.HTTP.Headers, nil, maxResult(nc), forward)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", rc.Name, err)
		}
		r.Caller = h
	case rc.Target.NATS != nil:
		if forward == nil {
			forward = target.AllHeaders // today's behaviour for NATS targets
		}
		r.Caller = target.NewNATS(nc, rc.Target.NATS.Subject, maxResult(nc), forward)
	default:
		return nil, fmt.Errorf("route %q: no target", rc.Name)
	}
	if rc.Cache.Key != "" {
		t, err := render.Parse("cache key", rc.Cache.Key)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", rc.Name, err)
		}
		r.CacheKey = t
	}
	b := rc.Backoff
	r.NativeRetry = &policy.BackoffRetry{Initial: b.Initial, Max: b.Max, Multiplier: b.Multiplier, Jitter: b.Jitter}
	if rc.Stub != nil {
		// viper lower-cases map keys; NATS headers are case-sensitive.
		h := make(map[string]string, len(rc.Stub.Headers))
		for k, v := range rc.Stub.Headers {
			if !headers.Reserved(k) { // refused by config validation too
				h[textproto.CanonicalMIMEHeaderKey(k)] = v
			}
		}
		r.NativeStub = &policy.StaticStub{Payload: []byte(rc.Stub.Payload), Headers: h}
	}
	r.Retry, r.Stub = r.NativeRetry, r.NativeStub
	mods := rc.Modules
	if (mods.Retry != nil || mods.Fallback != nil || mods.Stub != nil) && modules == nil {
		return nil, fmt.Errorf("route %q names policy modules but no module engine is running", rc.Name)
	}
	if mods.Retry != nil {
		if r.Retry, err = modules.RetryPolicy(ctx, rc.Name, mods.Retry); err != nil {
			return nil, fmt.Errorf("route %q: retry module %q: %w", rc.Name, mods.Retry.Name, err)
		}
		r.RetryModule, r.RetryConfig = mods.Retry.Name, mustJSON(mods.Retry.Config)
	}
	if mods.Stub != nil {
		if r.Stub, err = modules.StubPolicy(ctx, rc.Name, mods.Stub); err != nil {
			return nil, fmt.Errorf("route %q: stub module %q: %w", rc.Name, mods.Stub.Name, err)
		}
		r.StubModule, r.StubConfig = mods.Stub.Name, mustJSON(mods.Stub.Config)
	}
	r.NativeFallback = policy.DefaultFallback{HasStub: r.Stub != nil}
	r.Fallback = r.NativeFallback
	if mods.Fallback != nil {
		if r.Fallback, err = modules.FallbackPolicy(ctx, rc.Name, mods.Fallback); err != nil {
			return nil, fmt.Errorf("route %q: fallback module %q: %w", rc.Name, mods.Fallback.Name, err)
		}
		r.FallbackModule, r.FallbackConfig = mods.Fallback.Name, mustJSON(mods.Fallback.Config)
	}
	return r, nil
}

func mustJSON(v map[string]any) []byte {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil { // config came from YAML: always JSON-encodable
		panic(fmt.Sprintf("module config: %v", err))
	}
	return b
}
