package service

import (
	"context"
	"log/slog"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/overload"
	"github.com/breakwater-dev/breakwater/host/pipeline"
)

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

// guardFor returns rc's guard, or nil when it configures none.
func guardFor(set *overload.Set, rc *config.Route) pipeline.Guard {
	t := rc.Target
	if t.Breaker == nil && t.Bulkhead == nil && t.RateLimit == nil && rc.RateLimit == nil && rc.Hedge == nil {
		return nil
	}
	var tc overload.TargetConfig
	if b := t.Breaker; b != nil {
		tc.Breaker = &overload.BreakerConfig{FailureThreshold: b.FailureThreshold, FailureRate: b.FailureRate, MinRequests: b.MinRequests,
			Window: b.Window, ResetTimeout: b.ResetTimeout, HalfOpenProbes: b.HalfOpenProbes}
	}
	if b := t.Bulkhead; b != nil {
		tc.Bulkhead = &overload.BulkheadConfig{MaxConcurrent: b.MaxConcurrent, MaxWait: b.MaxWait}
	}
	tc.RateLimit = rateLimit(t.RateLimit)
	rcfg := overload.RouteConfig{RateLimit: rateLimit(rc.RateLimit)}
	if h := rc.Hedge; h != nil {
		rcfg.Hedge = &overload.HedgeConfig{Delay: h.Delay, MaxAttempts: h.MaxAttempts}
	}
	return set.Guard(rc.Name, t.Name, tc, rcfg)
}

func rateLimit(rl *config.RateLimit) *overload.RateLimitConfig {
	if rl == nil {
		return nil
	}
	return &overload.RateLimitConfig{PerSecond: rl.PerSecond, Burst: rl.Burst, MaxWait: rl.MaxWait}
}
