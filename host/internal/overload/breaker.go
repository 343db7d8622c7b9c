package overload

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// State is a circuit breaker's state.
type State int

// Breaker states.
const (
	Closed State = iota
	Open
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "closed"
}

// BreakerConfig configures a Breaker. Zero values take the defaults.
type BreakerConfig struct {
	FailureThreshold int           // consecutive failures that open it (default 5)
	FailureRate      float64       // 0 off; else open when failures/calls in Window reach it
	MinRequests      int           // calls in Window before FailureRate applies (default 20)
	Window           time.Duration // sliding window for FailureRate (default 10s)
	ResetTimeout     time.Duration // open → half-open (default 30s)
	HalfOpenProbes   int           // concurrent probes when half-open; that many successes close it (default 1)
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = 5
	}
	if c.MinRequests <= 0 {
		c.MinRequests = 20
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	if c.ResetTimeout <= 0 {
		c.ResetTimeout = 30 * time.Second
	}
	if c.HalfOpenProbes <= 0 {
		c.HalfOpenProbes = 1
	}
	return c
}

// ErrOpen matches (errors.Is) every *OpenError.
var ErrOpen = errors.New("circuit breaker open")

// OpenError is a call refused by an open (or saturated half-open) breaker.
type OpenError struct {
	Name       string
	RetryAfter time.Duration // until the next probe may go through
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("circuit breaker of %q is open: call not made (next probe in %v)", e.Name, e.RetryAfter.Round(time.Millisecond))
}

func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// bucketCount is the resolution of the failure-rate window.
const bucketCount = 10

type bucket struct {
	start           time.Time
	calls, failures int
}

// Breaker is a circuit breaker: closed → open after FailureThreshold
// consecutive failures or a failure rate in a window; open → half-open after
// ResetTimeout, letting HalfOpenProbes probes through; their success closes
// it, a failure opens it again. Safe for concurrent use.
type Breaker struct {
	name     string
	cfg      BreakerConfig
	clock    Clock
	onChange func(name string, from, to State)

	mu          sync.Mutex
	state       State
	consecutive int
	openedAt    time.Time
	probes      int // in flight while half-open
	successes   int // while half-open
	buckets     [bucketCount]bucket
}

// BreakerOption adjusts a Breaker.
type BreakerOption func(*Breaker)

// WithClock sets the time source (tests).
func WithClock(c Clock) BreakerOption { return func(b *Breaker) { b.clock = c } }

// WithStateChange calls f (outside the breaker's lock) on every transition.
func WithStateChange(f func(name string, from, to State)) BreakerOption {
	return func(b *Breaker) { b.onChange = f }
}

// NewBreaker returns a closed breaker named name.
func NewBreaker(name string, cfg BreakerConfig, opts ...BreakerOption) *Breaker {
	b := &Breaker{name: name, cfg: cfg.withDefaults(), clock: systemClock{}}
	for _, o := range opts {
		o(b)
	}
	return b
}

// State returns the current state (an open breaker past its reset timeout
// reports half_open).
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Open && b.clock.Now().Sub(b.openedAt) >= b.cfg.ResetTimeout {
		return HalfOpen
	}
	return b.state
}

// Allow asks to make one call. When allowed, the caller must call done
// exactly once with whether the call succeeded (in the target's terms).
// When refused, err is an *OpenError.
func (b *Breaker) Allow() (done func(success bool), err error) {
	b.mu.Lock()
	now := b.clock.Now()
	var changed []State
	if b.state == Open {
		if wait := b.cfg.ResetTimeout - now.Sub(b.openedAt); wait > 0 {
			b.mu.Unlock()
			return nil, &OpenError{Name: b.name, RetryAfter: wait}
		}
		changed = b.transition(HalfOpen, now)
	}
	probe := b.state == HalfOpen
	if probe {
		if b.probes >= b.cfg.HalfOpenProbes {
			b.mu.Unlock()
			b.notify(changed)
			return nil, &OpenError{Name: b.name}
		}
		b.probes++
	}
	b.mu.Unlock()
	b.notify(changed)
	var once sync.Once
	return func(success bool) { once.Do(func() { b.record(probe, success) }) }, nil
}

func (b *Breaker) record(probe, success bool) {
	b.mu.Lock()
	now := b.clock.Now()
	var changed []State
	if probe {
		b.probes--
	}
	switch {
	case b.state == HalfOpen && success:
		b.successes++
		if b.successes >= b.cfg.HalfOpenProbes {
			changed = b.transition(Closed, now)
		}
	case b.state == HalfOpen:
		changed = b.transition(Open, now)
	case b.state == Closed:
		b.count(now, success)
		if success {
			b.consecutive = 0
		} else {
			b.consecutive++
		}
		if b.consecutive >= b.cfg.FailureThreshold || b.rateExceeded(now) {
			changed = b.transition(Open, now)
		}
	}
	b.mu.Unlock()
	b.notify(changed)
}

// transition moves to state to; it returns [from, to] for notify.
func (b *Breaker) transition(to State, now time.Time) []State {
	from := b.state
	if from == to {
		return nil
	}
	b.state = to
	b.consecutive, b.successes, b.probes = 0, 0, 0
	if to == Open {
		b.openedAt = now
	}
	if to == Closed {
		b.buckets = [bucketCount]bucket{}
	}
	return []State{from, to}
}

func (b *Breaker) notify(changed []State) {
	if changed != nil && b.onChange != nil {
		b.onChange(b.name, changed[0], changed[1])
	}
}

// count adds a call to the sliding window.
func (b *Breaker) count(now time.Time, success bool) {
	width := b.cfg.Window / bucketCount
	start := now.Truncate(width)
	i := int(start.UnixNano()/int64(width)) % bucketCount
	if !b.buckets[i].start.Equal(start) {
		b.buckets[i] = bucket{start: start}
	}
	b.buckets[i].calls++
	if !success {
		b.buckets[i].failures++
	}
}

func (b *Breaker) rateExceeded(now time.Time) bool {
	if b.cfg.FailureRate <= 0 {
		return false
	}
	calls, failures := 0, 0
	for _, bk := range b.buckets {
		if now.Sub(bk.start) < b.cfg.Window {
			calls += bk.calls
			failures += bk.failures
		}
	}
	return calls >= b.cfg.MinRequests && float64(failures)/float64(calls) >= b.cfg.FailureRate
}
