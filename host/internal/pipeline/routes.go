package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// runState is what Run shares with the route runners it starts, and with
// those UpsertRoute starts later.
type runState struct {
	ctx     context.Context // ends at shutdown
	work    context.Context // outlives ctx by the grace period
	workers *sync.WaitGroup
	copts   topology.ConsumerOptions
	runners map[string]*routeRunner
}

// routeRunner consumes one route and answers its sync calls.
type routeRunner struct {
	cancel context.CancelFunc
	done   chan struct{}
	sub    *nats.Subscription
	// inFlight counts the messages and calls this runner handed out.
	inFlight sync.WaitGroup
}

// stop stops pulling and answering (the subscription drains: requests it
// already holds are answered) and waits for the consumer loop to end.
// Work already taken goes on; see waitInFlight.
func (rr *routeRunner) stop() {
	if rr.sub != nil {
		_ = rr.sub.Drain()
	}
	rr.cancel()
	<-rr.done
}

// waitInFlight waits, at most d, for the work the runner handed out.
func (rr *routeRunner) waitInFlight(d time.Duration) bool {
	done := make(chan struct{})
	go func() { rr.inFlight.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// startRunner starts consuming r and answering its calls. p.mu is held.
func (p *Pipeline) startRunner(r *attempt.Route) (*routeRunner, error) {
	run := p.run
	rctx, cancel := context.WithCancel(run.ctx)
	rr := &routeRunner{cancel: cancel, done: make(chan struct{})}
	ropts := run.copts
	ropts.MaxDeliver = int(p.hardBound(r.MaxAttempts)) + serverBackstop
	bind := func(ctx context.Context) (jetstream.Consumer, error) {
		return p.bindConsumer(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
			return topology.EnsureRouteConsumer(ctx, p.adminJS, r.Name, ropts)
		})
	}
	state := p.pulls[r.Name]
	groups := waitGroups{run.workers, &rr.inFlight}
	go func() {
		defer close(rr.done)
		p.consume(rctx, run.work, groups, topology.RouteConsumer(r.Name), state, bind, r.Concurrency, func(ctx context.Context, m jetstream.Msg) { p.process(ctx, r, m) })
	}()
	sub, err := p.o.Sync.Subscribe(run.work, groups, r)
	rr.sub = sub
	return rr, err
}

// UpsertRoute adds r, or replaces the route of its name, while the
// pipeline runs (or before). The new runner starts before the old one
// stops, so calls and messages keep being served; messages already taken
// finish with the route they started with.
func (p *Pipeline) UpsertRoute(ctx context.Context, r *attempt.Route) error {
	p.mu.Lock()
	p.known[r.Name] = true // the unrouted sweeper leaves its subject alone from now on
	running := p.run != nil
	p.mu.Unlock()
	if running {
		// Its subject may be in the unrouted consumer's filter.
		p.releaseUnrouted(ctx)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.routes[r.Name] = r
	if p.pulls[r.Name] == nil {
		p.pulls[r.Name] = &pullState{since: time.Now(), lastErr: "not started"}
	}
	if p.run == nil {
		return nil
	}
	old := p.run.runners[r.Name]
	rr, err := p.startRunner(r)
	p.run.runners[r.Name] = rr
	if old != nil {
		old.stop()
	}
	if err != nil {
		return fmt.Errorf("route %q: %w", r.Name, err)
	}
	p.log.Info("route serving", slog.String("route", r.Name), slog.Any("targets", r.TargetNames()))
	return nil
}

// RemoveRoute stops serving the route named name, waits (at most the
// shutdown grace) for the messages and calls it had taken, then deletes
// its durable consumer: messages still waiting on bw.in.<name> belong to no
// route and are dead-lettered ("no route serves …"), replayable once the
// route is back.
func (p *Pipeline) RemoveRoute(ctx context.Context, name string) error {
	p.mu.Lock()
	var rr *routeRunner
	if p.run != nil {
		rr = p.run.runners[name]
		delete(p.run.runners, name)
	}
	_, had := p.routes[name]
	delete(p.routes, name)
	delete(p.pulls, name)
	delete(p.known, name)
	p.mu.Unlock()
	if rr != nil {
		rr.stop()
		if !rr.waitInFlight(p.o.ShutdownGrace) {
			p.log.Warn("route removed while work was still in flight; what is left is dead-lettered", slog.String("route", name), slog.Duration("waited", p.o.ShutdownGrace))
		}
	}
	if !had {
		return nil
	}
	if err := topology.DeleteRouteConsumer(ctx, p.adminJS, name); err != nil {
		return fmt.Errorf("route %q removed, but its consumer was not: %w", name, err)
	}
	p.log.Info("route removed: messages still waiting for it will be dead-lettered", slog.String("route", name))
	return nil
}
