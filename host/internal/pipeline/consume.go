package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Pulls are short and heartbeated, so that after a broker failover (a new
// consumer leader, a reconnect) a consumer notices within seconds and pulls
// again, instead of waiting out a 30 s pull.
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
	// bindTimeout bounds creating or binding a consumer.
	bindTimeout = 5 * time.Second
	maxRebind   = 5 * time.Second
)

// pullState is a consumer's health, for readiness.
type pullState struct {
	consuming atomic.Bool
	mu        sync.Mutex
	lastErr   string
	since     time.Time
}

func (s *pullState) ok() {
	if s.consuming.Load() {
		return
	}
	s.mu.Lock()
	s.lastErr, s.since = "", time.Now()
	s.mu.Unlock()
	s.consuming.Store(true)
}

func (s *pullState) fail(err error) {
	s.consuming.Store(false)
	s.mu.Lock()
	s.lastErr, s.since = err.Error(), time.Now()
	s.mu.Unlock()
}

// RouteHealth is one route's consumer as /readyz reports it.
type RouteHealth struct {
	Consuming bool      `json:"consuming"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
	// Modules names the module and version serving each decision kind
	// (native kinds are left out).
	Modules map[string]string `json:"modules,omitempty"`
	// Breaker is the circuit breaker state of a route's one target ("" without one).
	Breaker string `json:"breaker,omitempty"`
	// Targets reports the targets with a guard or ejected, by name.
	Targets map[string]TargetHealth `json:"targets,omitempty"`
}

// TargetHealth is one target of a route.
type TargetHealth struct {
	Breaker string `json:"breaker,omitempty"`
	Ejected bool   `json:"ejected,omitempty"`
}

func (s *pullState) health() RouteHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return RouteHealth{Consuming: s.consuming.Load(), LastError: s.lastErr, Since: s.since}
}

// waitGroups counts the work a consumer hands out: in the pipeline's
// group (shutdown waits for it) and, for a route, in the route's own
// (removing the route waits for it).
type waitGroups []*sync.WaitGroup

func (w waitGroups) Add() {
	for _, g := range w {
		g.Add(1)
	}
}

func (w waitGroups) Done() {
	for _, g := range w {
		g.Done()
	}
}

// consume binds the consumer (bind creates or updates it first), pulls its
// messages and processes up to concurrency at once, until ctx ends. The
// slot is taken before the next message is pulled, so a slow target holds
// back only its own route's consumer. When a pull fails (missed
// heartbeats, a consumer without a leader, a lost connection) the
// iterator is dropped and the consumer bound again, with backoff.
func (p *Pipeline) consume(ctx, work context.Context, workers waitGroups, name string, state *pullState,
	bind func(context.Context) (jetstream.Consumer, error), concurrency int, handle func(context.Context, jetstream.Msg)) {
	slots := make(chan struct{}, concurrency)
	wait := 250 * time.Millisecond
	for ctx.Err() == nil {
		err := p.pull(ctx, work, workers, state, bind, slots, handle)
		if ctx.Err() != nil {
			return
		}
		state.fail(err)
		p.log.Warn("consumer: pull failed; pulling again", slog.String("consumer", name), slog.Duration("in", wait), slog.String("error", err.Error()))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, maxRebind)
	}
}

// pull runs one iterator until it fails (the error) or ctx ends.
func (p *Pipeline) pull(ctx, work context.Context, workers waitGroups, state *pullState,
	bind func(context.Context) (jetstream.Consumer, error), slots chan struct{}, handle func(context.Context, jetstream.Msg)) error {
	bctx, cancel := context.WithTimeout(ctx, bindTimeout)
	cons, err := bind(bctx)
	cancel()
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(cap(slots)), jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return fmt.Errorf("starting to pull: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	state.ok()

	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		msg, err := it.Next()
		if err != nil {
			<-slots
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		state.ok()

		workers.Add()
		go func() {
			defer workers.Done()
			defer func() { <-slots }()
			defer p.recoverPanic(msg)
			handle(work, msg)
		}()
	}
}
