package overload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/internal/target"
)

// TargetConfig are the guards shared by every route calling one target.
type TargetConfig struct {
	Breaker   *BreakerConfig
	Bulkhead  *BulkheadConfig
	RateLimit *RateLimitConfig
}

// RouteConfig are the guards of one route.
type RouteConfig struct {
	RateLimit *RateLimitConfig
	Hedge     *HedgeConfig
}

// BulkheadConfig configures a Bulkhead.
type BulkheadConfig struct {
	MaxConcurrent int
	MaxWait       time.Duration
}

// RateLimitConfig configures a RateLimit.
type RateLimitConfig struct {
	PerSecond float64
	Burst     int
	MaxWait   time.Duration
}

// HedgeConfig configures hedged requests.
type HedgeConfig struct {
	Delay       time.Duration
	MaxAttempts int
}

// targetGuards are one target's shared guards.
type targetGuards struct {
	breaker  *Breaker
	bulkhead *Bulkhead
	limit    *RateLimit
}

// Guard protects one route's calls: route rate limit → target rate limit →
// target bulkhead → target breaker → the call (hedged when configured).
// Safe for concurrent use.
type Guard struct {
	route string
	t     *targetGuards
	limit *RateLimit
	hedge *HedgeConfig
}

// Set holds the guards of every target, so routes sharing a target share
// its breaker, bulkhead and rate limit.
type Set struct {
	mu       sync.Mutex
	targets  map[string]*targetGuards
	onChange func(target string, from, to State)
	clock    Clock
}

// NewSet returns an empty Set. onChange (may be nil) hears every breaker
// transition.
func NewSet(onChange func(target string, from, to State)) *Set {
	return &Set{targets: map[string]*targetGuards{}, onChange: onChange, clock: systemClock{}}
}

// Guard returns the guard of route calling targetName. The first route to
// name a target configures its shared guards; later routes get the same
// ones (their target config is ignored).
func (s *Set) Guard(route, targetName string, tc TargetConfig, rc RouteConfig) *Guard {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.targets[targetName]
	if !ok {
		t = &targetGuards{}
		if tc.Breaker != nil {
			t.breaker = NewBreaker(targetName, *tc.Breaker, WithClock(s.clock), WithStateChange(s.onChange))
		}
		if b := tc.Bulkhead; b != nil {
			t.bulkhead = NewBulkhead(targetName, b.MaxConcurrent, b.MaxWait)
		}
		if l := tc.RateLimit; l != nil {
			t.limit = NewRateLimit("target "+targetName, l.PerSecond, l.Burst, l.MaxWait)
		}
		s.targets[targetName] = t
	}
	g := &Guard{route: route, t: t, hedge: rc.Hedge}
	if l := rc.RateLimit; l != nil {
		g.limit = NewRateLimit("route "+route, l.PerSecond, l.Burst, l.MaxWait)
	}
	return g
}

// BreakerState is the target's breaker state, "" without a breaker.
func (g *Guard) BreakerState() string {
	if g.t.breaker == nil {
		return ""
	}
	return g.t.breaker.State().String()
}

// Breaker returns the target's breaker (nil without one).
func (g *Guard) Breaker() *Breaker { return g.t.breaker }

// Call calls caller under the guards. Refusals are *target.Error with kind
// rate_limited, bulkhead_full or breaker_open; the call was not made.
func (g *Guard) Call(ctx context.Context, caller target.Caller, req *target.Request) (*target.Response, error) {
	for _, l := range []*RateLimit{g.limit, g.t.limit} {
		if l == nil {
			continue
		}
		if err := l.Wait(ctx); err != nil {
			return nil, &target.Error{Kind: abi.ErrorRateLimited, Message: err.Error(), Err: err}
		}
	}
	if g.t.bulkhead != nil {
		release, err := g.t.bulkhead.Acquire(ctx)
		if err != nil {
			return nil, &target.Error{Kind: abi.ErrorBulkheadFull, Message: err.Error(), Err: err}
		}
		defer release()
	}
	done := func(bool) {}
	if g.t.breaker != nil {
		var err error
		if done, err = g.t.breaker.Allow(); err != nil {
			return nil, &target.Error{Kind: abi.ErrorBreakerOpen, Message: err.Error(), Err: err}
		}
	}
	var resp *target.Response
	var err error
	if g.hedge != nil {
		resp, _, err = Hedge(ctx, g.hedge.Delay, g.hedge.MaxAttempts, func(ctx context.Context, _ int) (*target.Response, error) {
			return caller.Call(ctx, req)
		})
	} else {
		resp, err = caller.Call(ctx, req)
	}
	done(!TargetFault(err))
	return resp, err
}

// TargetFault reports whether err counts against the target's breaker: a
// timeout, a refused connection, a 5xx, 408 or 429. A 4xx is the caller's
// fault and bad input is the message's; neither says the target is unwell.
func TargetFault(err error) bool {
	if err == nil {
		return false
	}
	var te *target.Error
	if !errors.As(err, &te) {
		return !errors.Is(err, context.Canceled)
	}
	switch te.Kind {
	case abi.ErrorTimeout, abi.ErrorConnect, abi.ErrorInternal:
		return true
	case abi.ErrorStatus:
		return te.Status >= 500 || te.Status == 408 || te.Status == 429
	}
	return false
}

// String describes the guard for logs.
func (g *Guard) String() string {
	return fmt.Sprintf("guard(route=%s breaker=%v bulkhead=%v)", g.route, g.t.breaker != nil, g.t.bulkhead != nil)
}
