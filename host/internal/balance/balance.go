package balance

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Strategy picks the order of the targets for an attempt.
type Strategy int

// The strategies.
const (
	// Failover tries the targets in configured order; the attempt goes on
	// to the next one when one fails retryably or refuses the call.
	Failover Strategy = iota
	// RoundRobin starts each attempt at the next target in turn.
	RoundRobin
	// LeastPending starts each attempt at the target with the fewest calls
	// in flight on this instance.
	LeastPending
)

// Outlier configures ejection; see config.Outlier.
type Outlier struct {
	ConsecutiveFailures int
	FailureRate         float64 // 0: off
	MinRequests         int
	Window              time.Duration
	BaseEjectionTime    time.Duration
	MaxEjectionTime     time.Duration
	MaxEjectedPercent   int
}

// Ejection is a target leaving or coming back to balancing.
type Ejection struct {
	Target  int
	Ejected bool          // false: back
	For     time.Duration // how long, when ejected
	Reason  string
}

// Set is one route's targets. Safe for concurrent use.
type Set struct {
	n        int
	strategy Strategy
	outlier  *Outlier
	now      func() time.Time
	onEject  func(Ejection)
	next     atomic.Uint64
	pending  []atomic.Int64

	mu      sync.Mutex
	health  []health
	ejected int
}

type health struct {
	consecutive  int
	windowStart  time.Time
	calls, fails int
	ejectedUntil time.Time // zero: in
	times        int       // times ejected (the ejection time grows with it)
}

// Options configure a Set.
type Options struct {
	Strategy Strategy
	Outlier  *Outlier // nil: no ejection
	// Now is the clock (nil: time.Now); tests control it.
	Now func() time.Time
	// OnEjection hears ejections and returns (nil: none). It is called
	// with the set's lock held: it must be quick and not call the set.
	OnEjection func(Ejection)
}

// New returns the set of n targets.
func New(n int, o Options) *Set {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Set{n: n, strategy: o.Strategy, outlier: o.Outlier, now: o.Now, onEject: o.OnEjection,
		pending: make([]atomic.Int64, n), health: make([]health, n)}
}

// Order returns the indices of the targets in the order an attempt tries
// them: ejected targets last (they are tried only when every other one
// failed or refused), after the strategy's order.
func (s *Set) Order() []int {
	order := make([]int, s.n)
	for i := range order {
		order[i] = i
	}
	if s.n == 1 {
		return order
	}
	switch s.strategy {
	case RoundRobin:
		start := int(s.next.Add(1)-1) % s.n
		order = append(order[start:], order[:start]...)
	case LeastPending:
		// Ties go round robin, so equal targets share the load.
		start := int(s.next.Add(1)-1) % s.n
		order = append(order[start:], order[:start]...)
		slices.SortStableFunc(order, func(a, b int) int { return int(s.pending[a].Load() - s.pending[b].Load()) })
	}
	if s.outlier != nil {
		now := s.now()
		s.mu.Lock()
		slices.SortStableFunc(order, func(a, b int) int { return bool2int(s.isEjected(a, now)) - bool2int(s.isEjected(b, now)) })
		s.mu.Unlock()
	}
	return order
}

func bool2int(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Strategy is the set's strategy.
func (s *Set) Strategy() Strategy { return s.strategy }

// Begin counts a call to target i in flight; the returned function ends it.
func (s *Set) Begin(i int) (end func()) {
	s.pending[i].Add(1)
	return func() { s.pending[i].Add(-1) }
}

// Ejected reports whether target i is out of balancing now.
func (s *Set) Ejected(i int) bool {
	if s.outlier == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isEjected(i, s.now())
}

// isEjected: s.mu held. A target whose ejection time is over comes back.
func (s *Set) isEjected(i int, now time.Time) bool {
	h := &s.health[i]
	if h.ejectedUntil.IsZero() {
		return false
	}
	if now.Before(h.ejectedUntil) {
		return true
	}
	h.ejectedUntil = time.Time{}
	h.consecutive, h.calls, h.fails, h.windowStart = 0, 0, 0, now
	s.ejected--
	if s.onEject != nil {
		s.onEject(Ejection{Target: i, Reason: "ejection time over"})
	}
	return false
}

// Report records the result of a call to target i: failed is a failure
// that counts against the target (connection, timeout, 5xx, classified
// retryable), not a refusal by a local guard.
func (s *Set) Report(i int, failed bool) {
	o := s.outlier
	if o == nil {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isEjected(i, now) {
		return // a call made while out (every other target failed) does not extend it
	}
	h := &s.health[i]
	if now.Sub(h.windowStart) > o.Window {
		h.windowStart, h.calls, h.fails = now, 0, 0
	}
	h.calls++
	if !failed {
		h.consecutive = 0
		return
	}
	h.fails++
	h.consecutive++
	var reason string
	switch {
	case h.consecutive >= o.ConsecutiveFailures:
		reason = "consecutive failures"
	case o.FailureRate > 0 && h.calls >= o.MinRequests && float64(h.fails)/float64(h.calls) >= o.FailureRate:
		reason = "failure rate"
	default:
		return
	}
	// At most MaxEjectedPercent of the targets out, and never the last.
	if limit := min(max(1, s.n*o.MaxEjectedPercent/100), s.n-1); s.ejected >= limit {
		return
	}
	h.times++
	d := min(o.BaseEjectionTime*time.Duration(h.times), o.MaxEjectionTime)
	h.ejectedUntil = now.Add(d)
	s.ejected++
	if s.onEject != nil {
		s.onEject(Ejection{Target: i, Ejected: true, For: d, Reason: reason})
	}
}
