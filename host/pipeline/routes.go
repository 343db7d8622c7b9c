package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
}

// stop stops pulling and answering (work already taken finishes on its
// own) and waits for the consumer loop to end.
func (rr *routeRunner) stop() {
	if rr.sub != nil {
		_ = rr.sub.Unsubscribe()
	}
	rr.cancel()
	<-rr.done
}

// startRunner starts consuming r and answering its calls. p.mu is held.
func (p *Pipeline) startRunner(r *Route) error {
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
	go func() {
		defer close(rr.done)
		p.consume(rctx, run.work, run.workers, topology.RouteConsumer(r.Name), state, bind, r.Concurrency, func(ctx context.Context, m jetstream.Msg) { p.process(ctx, r, m) })
	}()
	run.runners[r.Name] = rr
	sub, err := p.subscribeCalls(run.work, run.workers, r)
	rr.sub = sub
	return err
}

// UpsertRoute adds r, or replaces the route of its name, while the
// pipeline runs (or before): the route's consumer is bound again with r's
// settings and new messages and calls are served by r; messages already
// taken finish with the route they started with.
func (p *Pipeline) UpsertRoute(r *Route) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil {
		if old := p.run.runners[r.Name]; old != nil {
			old.stop()
			delete(p.run.runners, r.Name)
		}
	}
	p.routes[r.Name] = r
	if p.pulls[r.Name] == nil {
		p.pulls[r.Name] = &pullState{since: time.Now(), lastErr: "not started"}
	}
	if p.run == nil {
		return nil
	}
	if err := p.startRunner(r); err != nil {
		return fmt.Errorf("route %q: %w", r.Name, err)
	}
	p.log.Info("route serving", slog.String("route", r.Name), slog.String("target", r.Target))
	return nil
}

// RemoveRoute stops serving the route named name and deletes its durable
// consumer: messages still waiting on bw.in.<name> then belong to no route
// and are dead-lettered ("no route serves …"), replayable once the route
// is back. Messages already taken finish.
func (p *Pipeline) RemoveRoute(ctx context.Context, name string) error {
	p.mu.Lock()
	if p.run != nil {
		if rr := p.run.runners[name]; rr != nil {
			rr.stop()
			delete(p.run.runners, name)
		}
	}
	_, had := p.routes[name]
	delete(p.routes, name)
	delete(p.pulls, name)
	p.mu.Unlock()
	if !had {
		return nil
	}
	if err := topology.DeleteRouteConsumer(ctx, p.adminJS, name); err != nil {
		return fmt.Errorf("route %q removed, but its consumer was not: %w", name, err)
	}
	p.log.Info("route removed: messages still waiting for it will be dead-lettered", slog.String("route", name))
	return nil
}
