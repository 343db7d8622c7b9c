package peers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/policy"
)

// BackoffConfig is the retry schedule shared by the native policy and its
// failsafe-go peer: the delay after attempt n is Initial·Multiplier^(n-1),
// capped at Max, jittered by ±Jitter (a factor in [0,1]).
type BackoffConfig struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64
}

// DefaultBackoff is the schedule of the decision benchmark (the same as
// host/engine's BenchmarkRetryDecision).
var DefaultBackoff = BackoffConfig{Initial: 200 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.5}

// Native is Breakwater's native retry policy with cfg.
func Native(cfg BackoffConfig) *policy.BackoffRetry {
	return &policy.BackoffRetry{Initial: cfg.Initial, Max: cfg.Max, Multiplier: cfg.Multiplier, Jitter: cfg.Jitter}
}

// AttemptError is a failed attempt as an error, for failsafe-go.
type AttemptError struct {
	Kind   abi.ErrorKind
	Status int32
}

func (e *AttemptError) Error() string {
	if e.Kind == abi.ErrorStatus {
		return fmt.Sprintf("status %d", e.Status)
	}
	return string(e.Kind)
}

// FailsafeRetry makes Breakwater's native retry decision (retry or not, and
// the delay) with a failsafe-go RetryPolicy: HandleIf the error is one
// another attempt can cure (policy.Retryable), AbortIf it is not,
// WithMaxRetries(max_attempts − attempt), WithBackoffFactor and
// WithJitterFactor as BackoffConfig.
//
// failsafe-go has no "decide" method: a RetryPolicy only acts inside an
// execution. So each decision is one real execution whose function fails
// with the attempt's error; the policy then aborts (not retryable), gives
// up (retries exceeded), or schedules a retry: OnRetryScheduled reports
// the delay and cancels the execution's context, so the executor returns
// at once instead of sleeping. A failsafe-go backoff lives in its
// execution, so the decision for attempt n is made by a policy whose
// first delay is the delay of attempt n (one policy per (attempt,
// max_attempts), built once and cached).
type FailsafeRetry struct {
	cfg      BackoffConfig
	policies sync.Map // uint64(attempt)<<32 | max_attempts → retrypolicy.RetryPolicy[any]
}

// NewFailsafeRetry returns the failsafe-go peer of Native(cfg).
func NewFailsafeRetry(cfg BackoffConfig) *FailsafeRetry { return &FailsafeRetry{cfg: cfg} }

type fsKey struct{}

type fsState struct {
	cancel context.CancelFunc
	retry  bool
	delay  time.Duration
	reason string
}

func retryable(_ any, err error) bool {
	var ae *AttemptError
	if !errors.As(err, &ae) {
		return false
	}
	ok, _ := policy.Retryable(abi.AttemptError{Kind: ae.Kind, Status: ae.Status})
	return ok
}

func (f *FailsafeRetry) policy(attempt, maxAttempts uint32) retrypolicy.RetryPolicy[any] {
	key := uint64(attempt)<<32 | uint64(maxAttempts)
	if p, ok := f.policies.Load(key); ok {
		return p.(retrypolicy.RetryPolicy[any])
	}
	d := float64(f.cfg.Initial) * math.Pow(f.cfg.Multiplier, float64(max(attempt, 1)-1))
	first := time.Duration(min(d, float64(f.cfg.Max)))
	retries := 0
	if maxAttempts > attempt {
		retries = int(maxAttempts - attempt)
	}
	p := retrypolicy.NewBuilder[any]().
		HandleIf(retryable).
		AbortIf(func(_ any, err error) bool { return !retryable(nil, err) }).
		WithMaxRetries(retries).
		WithBackoffFactor(first, max(first, f.cfg.Max), f.cfg.Multiplier).
		WithJitterFactor(f.cfg.Jitter).
		OnRetryScheduled(func(e failsafe.ExecutionScheduledEvent[any]) {
			if s, ok := e.Context().Value(fsKey{}).(*fsState); ok {
				s.retry, s.delay = true, e.Delay
				s.cancel()
			}
		}).
		Build()
	actual, _ := f.policies.LoadOrStore(key, p)
	return actual.(retrypolicy.RetryPolicy[any])
}

// DecideRetry has the shape of policy.BackoffRetry.DecideRetry.
func (f *FailsafeRetry) DecideRetry(ctx context.Context, in *abi.Input) (abi.RetryDecision, error) {
	if in.Attempt >= in.MaxAttempts {
		// As the native policy: nothing to ask the retry policy.
		return abi.RetryDecision{Reason: fmt.Sprintf("attempts exhausted (%d of %d)", in.Attempt, in.MaxAttempts)}, nil
	}
	s := &fsState{}
	cctx, cancel := context.WithCancel(context.WithValue(ctx, fsKey{}, s))
	s.cancel = cancel
	attemptErr := &AttemptError{Kind: in.Error.Kind, Status: in.Error.Status}
	err := failsafe.With[any](f.policy(in.Attempt, in.MaxAttempts)).WithContext(cctx).Run(func() error { return attemptErr })
	cancel()
	switch {
	case s.retry:
		return abi.RetryDecision{Retry: true, DelayMs: s.delay.Milliseconds(), Reason: "retryable " + string(in.Error.Kind)}, nil
	case retrypolicy.IsExceededError(err):
		return abi.RetryDecision{Reason: fmt.Sprintf("attempts exhausted (%d of %d)", in.Attempt, in.MaxAttempts)}, nil
	case errors.Is(err, attemptErr):
		return abi.RetryDecision{Reason: attemptErr.Error() + " is not retryable"}, nil
	case err != nil && ctx.Err() != nil:
		return abi.RetryDecision{}, ctx.Err()
	default:
		return abi.RetryDecision{}, fmt.Errorf("failsafe: unexpected outcome %v", err)
	}
}

// SyncConfig shapes the failsafe-go sync peer like a Breakwater route:
// a per-attempt Timeout, MaxAttempts attempts with BackoffConfig, and a
// consecutive-failure circuit breaker.
type SyncConfig struct {
	Timeout          time.Duration // per attempt (route timeout)
	MaxAttempts      int
	Backoff          BackoffConfig
	BreakerFailures  uint          // consecutive failures that open the breaker
	BreakerOpenDelay time.Duration // how long it stays open
}

// FailsafeRequester is failsafe-go's Retry(CircuitBreaker(Timeout(request)))
// around nc.RequestWithContext: the in-process alternative to a resilience
// runtime on the sync path.
type FailsafeRequester struct {
	nc      *nats.Conn
	subject string
	exec    failsafe.Executor[*nats.Msg]
}

// NewFailsafeRequester wraps requests to subject on nc.
func NewFailsafeRequester(nc *nats.Conn, subject string, cfg SyncConfig) *FailsafeRequester {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = 5
	}
	if cfg.BreakerOpenDelay <= 0 {
		cfg.BreakerOpenDelay = 30 * time.Second
	}
	rp := retrypolicy.NewBuilder[*nats.Msg]().
		WithMaxAttempts(cfg.MaxAttempts).
		WithBackoffFactor(cfg.Backoff.Initial, cfg.Backoff.Max, cfg.Backoff.Multiplier).
		WithJitterFactor(cfg.Backoff.Jitter).
		ReturnLastFailure().
		Build()
	cb := circuitbreaker.NewBuilder[*nats.Msg]().
		WithFailureThreshold(cfg.BreakerFailures).
		WithDelay(cfg.BreakerOpenDelay).
		Build()
	to := timeout.NewBuilder[*nats.Msg](cfg.Timeout).Build()
	return &FailsafeRequester{nc: nc, subject: subject, exec: failsafe.With[*nats.Msg](rp, cb, to)}
}

// Request sends data and returns the reply.
func (r *FailsafeRequester) Request(ctx context.Context, data []byte) (*nats.Msg, error) {
	return r.exec.WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[*nats.Msg]) (*nats.Msg, error) {
		return r.nc.RequestWithContext(exec.Context(), r.subject, data)
	})
}
