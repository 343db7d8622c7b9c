package attempt

import (
	"context"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/internal/balance"
	"github.com/breakwater-dev/breakwater/host/internal/cache"
	"github.com/breakwater-dev/breakwater/host/internal/decision"
	"github.com/breakwater-dev/breakwater/host/internal/render"
	"github.com/breakwater-dev/breakwater/host/internal/target"
)

// Route is a route ready to serve: complete when constructed, read-only
// after.
type Route struct {
	Name        string
	Timeout     time.Duration // one call to one target
	MaxAttempts uint32
	Concurrency int
	// Deadline bounds a sync call end to end.
	Deadline time.Duration
	// Targets are tried in the order Balance gives for each attempt.
	Targets []Target
	Balance *balance.Set
	// Cache: nil Key means the route does not cache.
	Cache CacheSpec
	// The route's policies, one per decision kind. Stub is unavailable
	// when the route has neither a static stub nor a stub module;
	// Classify without a module keeps the status rules.
	Retry    *decision.Policy[abi.RetryDecision]
	Fallback *decision.Policy[abi.FallbackDecision]
	Stub     *decision.Policy[abi.Stub]
	Classify *decision.Policy[abi.ClassifyDecision]
	// ReplySubjects are the subjects a producer may name in Bw-Reply-To
	// or as a sync reply subject.
	ReplySubjects []string
	// ResponseHeaders says which of a target's response headers go on the
	// outcome and to policies.
	ResponseHeaders *target.HeaderFilter
}

// TargetNames lists the route's targets' names, in configured order.
func (r *Route) TargetNames() []string {
	names := make([]string, len(r.Targets))
	for i, t := range r.Targets {
		names[i] = t.Name
	}
	return names
}

// Target is one of a route's targets.
type Target struct {
	// Name identifies the target in outcomes, logs, metrics, policy input
	// and the kill switch target.<name>.enabled.
	Name   string
	Caller target.Caller
	// Guard protects the target (nil: calls go straight to Caller).
	Guard Guard
}

// CacheMode says when a cached value serves.
type CacheMode int

// The cache modes.
const (
	// CacheFallback serves a last-known-good value only when the target
	// fails, within MaxAge.
	CacheFallback CacheMode = iota
	// CacheReadThrough serves a value younger than Fresh without calling
	// the target, and an older one (within MaxAge, stale-if-error) only
	// when the target fails. Concurrent identical misses call once.
	CacheReadThrough
)

// CacheSpec is a route's cache.
type CacheSpec struct {
	Key  *render.Template // nil: no cache
	Mode CacheMode
	// Fresh (read_through) is how long a value serves without a call.
	Fresh time.Duration
	// MaxAge is how old a value may be and still serve when the target
	// fails (ttl in mode fallback, stale_if_error in read_through).
	MaxAge time.Duration
}

// Guard protects a target from overload: rate limits, bulkhead, circuit
// breaker, hedging (host/internal/overload).
type Guard interface {
	// Call calls caller under the guards; refusals are *target.Error with
	// kind rate_limited, bulkhead_full or breaker_open.
	Call(ctx context.Context, caller target.Caller, req *target.Request) (*target.Response, error)
	// BreakerState is "closed", "open", "half_open", or "" without a breaker.
	BreakerState() string
}

// Switches says whether routes and targets are switched on, and which flags
// policy modules see (host/flagstore).
type Switches interface {
	Enabled(route, target string) bool
	ForRoute(route string) map[string]string
}

// Cache stores answers by route and rendered key (host/internal/cache).
type Cache interface {
	Get(ctx context.Context, route, key string, maxAge time.Duration) (cache.Entry, bool, error)
	Put(ctx context.Context, route, key string, value []byte) error
}
