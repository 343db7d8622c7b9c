package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// startupAttemptTimeout bounds one attempt of a start-up step against the
// broker (creating streams, opening buckets).
const startupAttemptTimeout = 10 * time.Second

// retryStartup runs step until it succeeds, ctx ends, or nats.connect_timeout
// (the start-up budget) has passed, with backoff and a log line per failed
// attempt. Instances started at the same moment on a fresh cluster race to
// create the same streams, and a cluster still electing leaders answers
// with timeouts: both are worth another try.
func (s *Service) retryStartup(ctx context.Context, what string, step func(ctx context.Context) error) error {
	budget := s.cfg.NATS.ConnectTimeout
	b := backoff.NewExponentialBackOff(backoff.WithInitialInterval(250*time.Millisecond), backoff.WithMaxInterval(3*time.Second), backoff.WithMaxElapsedTime(budget))
	attempt := 0
	err := backoff.RetryNotify(func() error {
		attempt++
		actx, cancel := context.WithTimeout(ctx, startupAttemptTimeout)
		defer cancel()
		return step(actx)
	}, backoff.WithContext(b, ctx), func(err error, wait time.Duration) {
		s.log.Warn("start-up step failed; retrying", slog.String("step", what), slog.Int("attempt", attempt),
			slog.Duration("retry_in", wait), slog.String("error", err.Error()))
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		return fmt.Errorf("%s (%d attempts within nats.connect_timeout %v): %w", what, attempt, budget, err)
	}
	return nil
}
