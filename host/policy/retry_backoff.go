package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// BackoffRetry is the native retry policy: exponential backoff with jitter
// (cenkalti/backoff/v4), bounded by the route's max attempts, retrying only
// errors that another attempt can cure (see Retryable).
type BackoffRetry struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64 // randomization factor in [0,1]
}

// DecideRetry decides whether to retry, and when; it never fails.
func (p *BackoffRetry) DecideRetry(_ context.Context, in *abi.Input) (abi.RetryDecision, error) {
	if in.Attempt >= in.MaxAttempts {
		return abi.RetryDecision{Reason: fmt.Sprintf("attempts exhausted (%d of %d)", in.Attempt, in.MaxAttempts)}, nil
	}
	if ok, why := Retryable(in.Error); !ok {
		return abi.RetryDecision{Reason: why}, nil
	}
	d := abi.RetryDecision{Retry: true, DelayMs: p.Delay(in.Attempt).Milliseconds(), Reason: "retryable " + string(in.Error.Kind)}
	if in.RetryAfterMs > d.DelayMs {
		// The target said when to come back: no sooner.
		d.DelayMs, d.Reason = in.RetryAfterMs, d.Reason+"; Retry-After honoured"
	}
	return d, nil
}

// Delay is the jittered delay before the attempt following attempt n (1-based).
func (p *BackoffRetry) Delay(n uint32) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.Initial,
		RandomizationFactor: p.Jitter,
		Multiplier:          p.Multiplier,
		MaxInterval:         p.Max,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	d := b.NextBackOff()
	for i := uint32(1); i < n; i++ {
		d = b.NextBackOff()
	}
	return d
}

// Retryable reports whether another attempt could succeed after e, and why not.
// Timeouts, connection errors, 5xx, 408, 429, the local guards (breaker,
// bulkhead, rate limit) and answers a classify module judged retryable
// (classified_retryable) are transient; other 4xx, bad input, switched-off
// routes, unknown routes and answers judged permanent (classified_permanent)
// are not.
func Retryable(e abi.AttemptError) (bool, string) {
	switch e.Kind {
	case abi.ErrorTimeout, abi.ErrorConnect, abi.ErrorBreakerOpen, abi.ErrorBulkheadFull, abi.ErrorRateLimited, abi.ErrorInternal,
		abi.ErrorClassifiedRetryable:
		return true, ""
	case abi.ErrorClassifiedPermanent:
		return false, "the classifier judged the answer a permanent failure"
	case abi.ErrorStatus:
		if e.Status >= 500 || e.Status == 408 || e.Status == 429 {
			return true, ""
		}
		return false, fmt.Sprintf("status %d is not retryable", e.Status)
	default:
		return false, fmt.Sprintf("%s is not retryable", e.Kind)
	}
}
