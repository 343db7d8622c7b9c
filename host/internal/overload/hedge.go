package overload

import (
	"context"
	"time"
)

// Hedge runs fn, and when it has not answered after delay, runs it again,
// up to maxAttempts concurrent attempts. The first success wins and the
// other attempts' contexts are cancelled; Hedge returns without waiting for
// them (fn must return promptly once its context ends: it owns nothing the
// caller needs). When every attempt fails, the first attempt's error is
// returned: it is the one a non-hedged call would have seen. A failure does
// not start another attempt: hedging answers slowness, retries answer
// failure.
func Hedge[T any](ctx context.Context, delay time.Duration, maxAttempts int, fn func(ctx context.Context, attempt int) (T, error)) (T, int, error) {
	maxAttempts = max(maxAttempts, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		v       T
		attempt int
		err     error
	}
	results := make(chan result, maxAttempts)
	launch := func(attempt int) {
		go func() {
			v, err := fn(ctx, attempt)
			results <- result{v, attempt, err}
		}()
	}
	launch(1)
	started, finished := 1, 0
	var firstErr error
	var firstErrAttempt int
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		var tick <-chan time.Time
		if started < maxAttempts {
			tick = timer.C
		}
		select {
		case r := <-results:
			finished++
			if r.err == nil {
				return r.v, r.attempt, nil
			}
			if firstErr == nil || r.attempt < firstErrAttempt {
				firstErr, firstErrAttempt = r.err, r.attempt
			}
			if finished == started {
				// Every attempt made has failed: hedging answers slowness,
				// not failure (that is the retry policy's job).
				var zero T
				return zero, firstErrAttempt, firstErr
			}
		case <-tick:
			started++
			launch(started)
			timer.Reset(delay)
		}
	}
}
