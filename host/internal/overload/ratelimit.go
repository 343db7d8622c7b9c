package overload

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// ErrLimited matches (errors.Is) every *LimitedError.
var ErrLimited = errors.New("rate limited")

// LimitedError is a call refused by a rate limit.
type LimitedError struct {
	Name      string
	PerSecond float64
	Wait      time.Duration // how long a token would have taken
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("rate limit of %q (%g/s) reached: call not made (a token would take %v)", e.Name, e.PerSecond, e.Wait.Round(time.Millisecond))
}

func (e *LimitedError) Is(target error) bool { return target == ErrLimited }

// RateLimit is a token bucket (golang.org/x/time/rate): calls wait at most
// MaxWait for a token, and never when the wait would exceed it.
type RateLimit struct {
	name    string
	limiter *rate.Limiter
	perSec  float64
	maxWait time.Duration
	now     func() time.Time
}

// NewRateLimit returns a limit of perSecond with burst.
func NewRateLimit(name string, perSecond float64, burst int, maxWait time.Duration) *RateLimit {
	return &RateLimit{name: name, limiter: rate.NewLimiter(rate.Limit(perSecond), burst), perSec: perSecond, maxWait: maxWait, now: time.Now}
}

// Wait takes a token, waiting at most MaxWait (and never past ctx).
func (l *RateLimit) Wait(ctx context.Context) error {
	now := l.now()
	r := l.limiter.ReserveN(now, 1)
	if !r.OK() {
		return &LimitedError{Name: l.name, PerSecond: l.perSec}
	}
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	if delay > l.maxWait {
		r.CancelAt(now)
		return &LimitedError{Name: l.name, PerSecond: l.perSec, Wait: delay}
	}
	if dl, ok := ctx.Deadline(); ok && dl.Sub(now) < delay {
		r.CancelAt(now)
		return &LimitedError{Name: l.name, PerSecond: l.perSec, Wait: delay}
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return &LimitedError{Name: l.name, PerSecond: l.perSec, Wait: delay}
	}
}
