package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/textproto"

	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/internal/balance"
	"github.com/breakwater-dev/breakwater/host/internal/binding"
	"github.com/breakwater-dev/breakwater/host/internal/decision"
	"github.com/breakwater-dev/breakwater/host/internal/overload"
	"github.com/breakwater-dev/breakwater/host/internal/render"
	"github.com/breakwater-dev/breakwater/host/internal/target"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
	"github.com/breakwater-dev/breakwater/host/policy"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// Assembly: the service alone turns configuration into routes ready to
// serve (targets, guards, balancing, cache, and a policy per decision
// kind). The message path's packages take them complete and never read
// configuration.

// outcomeHeadroom is kept free in every outcome for the runtime's headers:
// a target answer may use the server's max_payload less this.
const outcomeHeadroom = 16 << 10

// maxResult is the largest target answer an outcome on nc can carry.
func maxResult(nc *nats.Conn) int {
	return max(int(nc.MaxPayload())-outcomeHeadroom, 1024)
}

// buildRoute turns a route's configuration into a route ready to serve,
// starting the module engine on first need.
func (s *Service) buildRoute(ctx context.Context, rc *config.Route) (*attempt.Route, error) {
	fail := func(err error) (*attempt.Route, error) { return nil, fmt.Errorf("route %q: %w", rc.Name, err) }
	forward, err := target.NewHeaderFilter(rc.ForwardHeaders)
	if err != nil {
		return fail(fmt.Errorf("forward_headers: %w", err))
	}
	respHeaders, err := target.NewHeaderFilter(rc.ResponseHeaders)
	if err != nil {
		return fail(fmt.Errorf("response_headers: %w", err))
	}
	targets := make([]attempt.Target, 0, len(rc.Targets))
	for i := range rc.Targets {
		t, err := s.buildTarget(rc, &rc.Targets[i], forward)
		if err != nil {
			return fail(err)
		}
		targets = append(targets, t)
	}
	cache, err := cacheSpec(rc)
	if err != nil {
		return fail(err)
	}
	pols, err := s.buildPolicies(ctx, rc)
	if err != nil {
		return fail(err)
	}
	return &attempt.Route{
		Name:            rc.Name,
		Timeout:         rc.Timeout,
		MaxAttempts:     uint32(rc.MaxAttempts),
		Concurrency:     rc.Concurrency,
		Deadline:        rc.Deadline,
		Targets:         targets,
		Balance:         s.balanceFor(rc, targets),
		Cache:           cache,
		Retry:           pols.retry,
		Fallback:        pols.fallback,
		Stub:            pols.stub,
		Classify:        pols.classify,
		ReplySubjects:   append(append([]string(nil), topology.ReplyNamespaces...), rc.ReplySubjects...),
		ResponseHeaders: respHeaders,
	}, nil
}

// buildTarget makes one target of rc: its caller and its guard.
func (s *Service) buildTarget(rc *config.Route, tc *config.Target, forward *target.HeaderFilter) (attempt.Target, error) {
	t := attempt.Target{Name: tc.Name, Guard: s.guardFor(rc, tc)}
	switch {
	case tc.HTTP != nil:
		h, err := target.NewHTTP(tc.HTTP.Method, tc.HTTP.URL, tc.HTTP.Headers, nil, maxResult(s.nc), forward)
		if err != nil {
			return t, fmt.Errorf("target %q: %w", tc.Name, err)
		}
		t.Caller = h
	case tc.NATS != nil:
		if forward == nil {
			forward = target.AllHeaders // NATS targets get every header unless told otherwise
		}
		t.Caller = target.NewNATS(s.nc, tc.NATS.Subject, maxResult(s.nc), forward)
	default:
		return t, fmt.Errorf("target %q: neither http nor nats", tc.Name)
	}
	return t, nil
}

// guardFor returns target tc's guard on route rc, or nil when none is
// configured. Guards are shared by every route calling the same target.
func (s *Service) guardFor(rc *config.Route, tc *config.Target) attempt.Guard {
	if tc.Breaker == nil && tc.Bulkhead == nil && tc.RateLimit == nil && rc.RateLimit == nil && rc.Hedge == nil {
		return nil
	}
	var c overload.TargetConfig
	if b := tc.Breaker; b != nil {
		c.Breaker = &overload.BreakerConfig{FailureThreshold: b.FailureThreshold, FailureRate: b.FailureRate, MinRequests: b.MinRequests,
			Window: b.Window, ResetTimeout: b.ResetTimeout, HalfOpenProbes: b.HalfOpenProbes}
	}
	if b := tc.Bulkhead; b != nil {
		c.Bulkhead = &overload.BulkheadConfig{MaxConcurrent: b.MaxConcurrent, MaxWait: b.MaxWait}
	}
	c.RateLimit = rateLimit(tc.RateLimit)
	rcfg := overload.RouteConfig{RateLimit: rateLimit(rc.RateLimit)}
	if h := rc.Hedge; h != nil {
		rcfg.Hedge = &overload.HedgeConfig{Delay: h.Delay, MaxAttempts: h.MaxAttempts}
	}
	g := s.guards.Guard(rc.Name, tc.Name, c, rcfg)
	if st := g.BreakerState(); st != "" {
		s.metrics.BreakerState(tc.Name, st)
	}
	return g
}

func rateLimit(rl *config.RateLimit) *overload.RateLimitConfig {
	if rl == nil {
		return nil
	}
	return &overload.RateLimitConfig{PerSecond: rl.PerSecond, Burst: rl.Burst, MaxWait: rl.MaxWait}
}

// balanceFor makes the route's balancing among targets.
func (s *Service) balanceFor(rc *config.Route, targets []attempt.Target) *balance.Set {
	o := balance.Options{Strategy: map[string]balance.Strategy{
		config.StrategyFailover: balance.Failover, config.StrategyRoundRobin: balance.RoundRobin, config.StrategyLeastPending: balance.LeastPending,
	}[rc.Strategy]}
	if oc := rc.Outlier; oc != nil && len(targets) > 1 {
		o.Outlier = &balance.Outlier{ConsecutiveFailures: oc.ConsecutiveFailures, FailureRate: oc.FailureRate, MinRequests: oc.MinRequests,
			Window: oc.Window, BaseEjectionTime: oc.BaseEjectionTime, MaxEjectionTime: oc.MaxEjectionTime, MaxEjectedPercent: oc.MaxEjectedPercent}
		route := rc.Name
		o.OnEjection = func(e balance.Ejection) {
			name := targets[e.Target].Name
			s.metrics.Ejected(route, name, e.Ejected)
			if e.Ejected {
				s.log.Warn("target ejected from balancing", "route", route, "target", name, "for", e.For, "reason", e.Reason)
			} else {
				s.log.Info("target back in balancing", "route", route, "target", name)
			}
		}
	}
	return balance.New(len(targets), o)
}

// cacheSpec is rc's cache.
func cacheSpec(rc *config.Route) (attempt.CacheSpec, error) {
	c := rc.Cache
	if c.Key == "" {
		return attempt.CacheSpec{}, nil
	}
	key, err := render.Parse("cache key", c.Key)
	if err != nil {
		return attempt.CacheSpec{}, err
	}
	if c.Mode == config.CacheReadThrough {
		return attempt.CacheSpec{Key: key, Mode: attempt.CacheReadThrough, Fresh: c.Fresh, MaxAge: c.StaleIfError}, nil
	}
	return attempt.CacheSpec{Key: key, Mode: attempt.CacheFallback, MaxAge: c.TTL}, nil
}

// policies are a route's decision policies.
type policies struct {
	retry    *decision.Policy[abi.RetryDecision]
	fallback *decision.Policy[abi.FallbackDecision]
	stub     *decision.Policy[abi.Stub]
	classify *decision.Policy[abi.ClassifyDecision]
}

// buildPolicies binds rc's modules (if any) beside its native policies.
func (s *Service) buildPolicies(ctx context.Context, rc *config.Route) (policies, error) {
	b := rc.Backoff
	retry := &policy.BackoffRetry{Initial: b.Initial, Max: b.Max, Multiplier: b.Multiplier, Jitter: b.Jitter}
	var static *policy.StaticStub
	if rc.Stub != nil {
		// viper lower-cases map keys; NATS headers are case-sensitive.
		h := make(map[string]string, len(rc.Stub.Headers))
		for k, v := range rc.Stub.Headers {
			if !headers.Reserved(k) { // refused by config validation too
				h[textproto.CanonicalMIMEHeaderKey(k)] = v
			}
		}
		static = &policy.StaticStub{Payload: []byte(rc.Stub.Payload), Headers: h}
	}
	var p policies
	var err error
	mods := rc.Modules
	if p.retry, err = bindKind(ctx, s, rc, decision.Retry, mods.Retry, func(ctx context.Context, in *abi.Input) abi.RetryDecision {
		d, _ := retry.DecideRetry(ctx, in)
		return d
	}); err != nil {
		return p, err
	}
	var nativeStub decision.Native[abi.Stub]
	if static != nil {
		nativeStub = func(ctx context.Context, in *abi.Input) abi.Stub {
			st, _ := static.GenerateStub(ctx, in)
			return st
		}
	}
	if p.stub, err = bindKind(ctx, s, rc, decision.Stub, mods.Stub, nativeStub); err != nil {
		return p, err
	}
	fallback := policy.DefaultFallback{HasStub: p.stub.Available()}
	if p.fallback, err = bindKind(ctx, s, rc, decision.Fallback, mods.Fallback, func(ctx context.Context, in *abi.Input) abi.FallbackDecision {
		d, _ := fallback.ChooseFallback(ctx, in)
		return d
	}); err != nil {
		return p, err
	}
	// Classify has no native policy: without a module (or when it fails)
	// the status rules stand (2xx success, other statuses failures).
	if p.classify, err = bindKind[abi.ClassifyDecision](ctx, s, rc, decision.Classify, mods.Classify, nil); err != nil {
		return p, err
	}
	return p, nil
}

// bindKind makes rc's policy of one kind: the module ref names (bound
// through the binder, the engine started on first need) over native.
func bindKind[Out any](ctx context.Context, s *Service, rc *config.Route, kind decision.Kind[Out], ref *config.ModuleRef, native decision.Native[Out]) (*decision.Policy[Out], error) {
	spec := decision.Spec[Out]{Kind: kind, Route: rc.Name, Native: native, OnFailed: s.core.PolicyFailed, Tracer: s.tracer.Tracer(tracing.Name)}
	if ref != nil {
		if err := s.ensureEngine(ctx); err != nil {
			return nil, err
		}
		l := ref.Limits
		mod, err := s.binder.Policy(ctx, rc.Name, binding.Ref{Name: ref.Name, Version: ref.Version, Kind: kind.Name,
			Limits: engine.Limits{Fuel: int64(l.Fuel), WallTime: l.WallTime, OutputBytes: l.OutputBytes}})
		if err != nil {
			return nil, fmt.Errorf("%s module %q: %w", kind.Name, ref.Name, err)
		}
		spec.Module, spec.ModuleName = mod, ref.Name
		spec.Recorder, spec.Sample, spec.OnShadow = s.recorder, rc.RecordSample(s.cfg), s.onShadow
		if ref.Config != nil {
			b, err := json.Marshal(ref.Config)
			if err != nil { // config came from YAML: always JSON-encodable
				return nil, fmt.Errorf("%s module %q: config: %w", kind.Name, ref.Name, err)
			}
			spec.Config = b
		}
	}
	return decision.New(spec), nil
}

// newGuards returns the set of per-target guards; breaker transitions are
// logged (and reported to onChange, may be nil).
func newGuards(log *slog.Logger, onChange func(target string, from, to overload.State)) *overload.Set {
	return overload.NewSet(func(target string, from, to overload.State) {
		level := slog.LevelWarn
		if to == overload.Closed {
			level = slog.LevelInfo
		}
		log.Log(context.Background(), level, "breaker state changed", slog.String("target", target), slog.String("from", from.String()), slog.String("to", to.String()))
		if onChange != nil {
			onChange(target, from, to)
		}
	})
}

// onShadow counts a shadow decision's result.
func (s *Service) onShadow(route, kind, module string, r decision.ShadowResult) {
	s.metrics.Shadow(route, kind, module, string(r))
}
