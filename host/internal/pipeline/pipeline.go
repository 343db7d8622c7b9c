package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/internal/syncpath"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// Options configures a Pipeline.
type Options struct {
	// JS and NC are the worker connection: consume, publish outcomes.
	JS jetstream.JetStream
	NC *nats.Conn
	// AdminJS creates and removes consumers (nil: JS).
	AdminJS jetstream.JetStream
	// Replies publishes to producers' reply subjects, and may do nothing
	// else (nil: NC).
	Replies  *nats.Conn
	Routes   []*attempt.Route
	Logger   *slog.Logger
	Observer attempt.Observer // nil: attempt.NopObserver
	// Core makes the attempts; Sync answers the routes' bw.call requests.
	Core *attempt.Core
	Sync *syncpath.Server
	// KnownRoutes are routes that exist though not served here (see
	// SetKnownRoutes).
	KnownRoutes []string
	// Tracer makes the spans of processing, attempts and decisions (nil:
	// none; an incoming trace context still travels on).
	Tracer trace.Tracer
	// AckWait and MaxAckPending shape the durable consumers.
	AckWait       time.Duration
	MaxAckPending int
	Replicas      int
	// UnroutedInterval is how often subjects no route serves are looked for.
	UnroutedInterval time.Duration
	// BrokerTimeout bounds every wait on the broker: a publish's ack, a KV
	// read or write.
	BrokerTimeout time.Duration
	// DuplicateWindow is the streams' de-duplication window: a result kept
	// for a redelivery is published only within it.
	DuplicateWindow time.Duration
	// InternalRetries and InternalRetryDelay: see config streams.internal_retries.
	InternalRetries    int
	InternalRetryDelay time.Duration
	// ShutdownGrace bounds how long in-flight messages may finish after Run's
	// context ends; unfinished ones are redelivered after AckWait.
	ShutdownGrace time.Duration
}

// Pipeline processes the routes' work. Create it with New, then Run it.
type Pipeline struct {
	o       Options
	js      jetstream.JetStream
	adminJS jetstream.JetStream
	nc      *nats.Conn
	replies *nats.Conn
	log     *slog.Logger
	obs     attempt.Observer
	core    *attempt.Core
	mu      sync.RWMutex // guards routes, pulls, run
	routes  map[string]*attempt.Route
	run     *runState // while Run runs
	known   map[string]bool
	// release asks the sweeper to drop the unrouted consumer (a route
	// was added); it closes the channel it is sent when done.
	release chan chan struct{}
	history history
	outs    jetstream.Stream

	pulls      map[string]*pullState  // by route
	publishErr atomic.Pointer[string] // the last outcome publish's error, nil after a success
}

// New opens the buckets and streams the pipeline uses (topology.Ensure must
// have created them) and creates the routes' durable consumers.
func New(ctx context.Context, o Options) (*Pipeline, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Observer == nil {
		o.Observer = attempt.NopObserver{}
	}
	if o.Tracer == nil {
		o.Tracer = tracing.Noop()
	}
	if o.UnroutedInterval == 0 {
		o.UnroutedInterval = 2 * time.Second
	}
	if o.ShutdownGrace == 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.BrokerTimeout <= 0 {
		o.BrokerTimeout = 5 * time.Second
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = 2 * time.Minute
	}
	if o.InternalRetries <= 0 {
		o.InternalRetries = 20
	}
	if o.InternalRetryDelay <= 0 {
		o.InternalRetryDelay = time.Second
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = 65536
	}
	if o.AdminJS == nil {
		o.AdminJS = o.JS
	}
	if o.Replies == nil {
		o.Replies = o.NC
	}
	if o.Core == nil || o.Sync == nil {
		return nil, errors.New("pipeline: Options.Core and Options.Sync are required")
	}
	p := &Pipeline{o: o, js: o.JS, adminJS: o.AdminJS, nc: o.NC, replies: o.Replies, log: o.Logger, obs: o.Observer, core: o.Core, routes: map[string]*attempt.Route{}}
	for _, r := range o.Routes {
		p.routes[r.Name] = r
	}
	p.release = make(chan chan struct{})
	p.known = map[string]bool{}
	for _, n := range o.KnownRoutes {
		p.known[n] = true
	}
	p.pulls = make(map[string]*pullState, len(p.routes))
	for n := range p.routes {
		p.pulls[n] = &pullState{since: time.Now(), lastErr: "not started"}
	}
	attemptsKV, err := o.JS.KeyValue(ctx, topology.BucketAttempts)
	if err != nil {
		return nil, fmt.Errorf("pipeline: bucket %s: %w", topology.BucketAttempts, err)
	}
	p.history = history{kv: attemptsKV, timeout: o.BrokerTimeout}
	if p.outs, err = o.JS.Stream(ctx, topology.StreamOut); err != nil {
		return nil, fmt.Errorf("pipeline: stream %s: %w", topology.StreamOut, err)
	}
	if err := topology.RemoveStaleRouteConsumers(ctx, o.AdminJS, p.knownRoutes()); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	return p, nil
}

func (p *Pipeline) routeNames() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	names := make([]string, 0, len(p.routes))
	for n := range p.routes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// RouteNames returns the names of the routes served, sorted.
func (p *Pipeline) RouteNames() []string { return p.routeNames() }

// route returns the route named name, or nil.
func (p *Pipeline) route(name string) *attempt.Route {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.routes[name]
}

// Health is what the pipeline reports for readiness: each route's
// consumer, the last outcome publish, and the sync path.
type Health struct {
	Routes map[string]RouteHealth `json:"routes"`
	// PublishError is the last outcome publish's error ("" when it
	// succeeded, or none was made).
	PublishError string `json:"publish_error,omitempty"`
	SyncReady    bool   `json:"sync_ready"`
}

// Health reports the routes' consumers, the last publish and the sync path.
func (p *Pipeline) Health() Health {
	p.mu.RLock()
	defer p.mu.RUnlock()
	h := Health{Routes: make(map[string]RouteHealth, len(p.routes)), SyncReady: p.run != nil}
	if p.run != nil {
		for _, rr := range p.run.runners {
			if rr.sub == nil {
				h.SyncReady = false
			}
		}
	}
	for name, st := range p.pulls {
		rh := st.health()
		r := p.routes[name]
		for kind, serving := range map[string]string{"retry": r.Retry.Serving(), "fallback": r.Fallback.Serving(), "stub": r.Stub.Serving(), "classify": r.Classify.Serving()} {
			if serving != "native" {
				if rh.Modules == nil {
					rh.Modules = map[string]string{}
				}
				rh.Modules[kind] = serving
			}
		}
		for i, t := range r.Targets {
			if t.Guard != nil || r.Balance.Ejected(i) {
				if rh.Targets == nil {
					rh.Targets = map[string]TargetHealth{}
				}
				th := TargetHealth{Ejected: r.Balance.Ejected(i)}
				if t.Guard != nil {
					th.Breaker = t.Guard.BreakerState()
				}
				rh.Targets[t.Name] = th
				if len(r.Targets) == 1 {
					rh.Breaker = th.Breaker
				}
			}
		}
		h.Routes[name] = rh
	}
	if e := p.publishErr.Load(); e != nil {
		h.PublishError = *e
	}
	return h
}

// Ready reports nil when every route consumes, the last outcome publish
// succeeded, and the sync path is subscribed.
func (p *Pipeline) Ready() error {
	h := p.Health()
	for name, r := range h.Routes {
		if !r.Consuming {
			return fmt.Errorf("pipeline: route %q not consuming: %s", name, r.LastError)
		}
	}
	if h.PublishError != "" {
		return fmt.Errorf("pipeline: the last outcome publish failed: %s", h.PublishError)
	}
	if !h.SyncReady {
		return fmt.Errorf("pipeline: sync path (bw.call subscriptions) not ready")
	}
	return nil
}

// Run consumes every route until ctx ends, then lets in-flight messages
// finish (up to ShutdownGrace) and returns.
func (p *Pipeline) Run(ctx context.Context) error {
	// Work outlives ctx by the grace period: a target call cut short by a
	// shutdown would be a needless failure and retry.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var consumers, workers sync.WaitGroup
	copts := topology.ConsumerOptions{AckWait: p.o.AckWait, MaxAckPending: p.o.MaxAckPending, Replicas: p.o.Replicas}
	p.mu.Lock()
	p.run = &runState{ctx: ctx, work: work, workers: &workers, copts: copts, runners: map[string]*routeRunner{}}
	syncOK := true
	for _, r := range p.routes {
		rr, err := p.startRunner(r)
		p.run.runners[r.Name] = rr
		if err != nil {
			p.log.Error("sync path unavailable", slog.String("route", r.Name), slog.String("error", err.Error()))
			syncOK = false
		}
	}
	p.mu.Unlock()
	_ = syncOK // readiness reads the runners' subscriptions
	consumers.Add(1)
	go func() {
		defer consumers.Done()
		p.sweepUnrouted(ctx, work, &workers, copts)
	}()
	<-ctx.Done()
	p.mu.Lock()
	for _, rr := range p.run.runners {
		rr.stop()
	}
	p.run = nil
	p.mu.Unlock()
	consumers.Wait()
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.o.ShutdownGrace):
		p.log.Warn("shutdown grace over; in-flight messages will be redelivered", slog.Duration("grace", p.o.ShutdownGrace))
		stopWork()
		<-done
	}
	return nil
}

// maxUnroutedPerSweep bounds the subjects one unrouted sweep consumes.
const maxUnroutedPerSweep = 100

// bindConsumer creates or updates a consumer on the admin connection, then
// binds to it on the worker connection, which pulls and acks.
func (p *Pipeline) bindConsumer(ctx context.Context, ensure func(context.Context) (jetstream.Consumer, error)) (jetstream.Consumer, error) {
	c, err := ensure(ctx)
	if err != nil {
		return nil, err
	}
	name := c.CachedInfo().Name
	wc, err := p.js.Consumer(ctx, topology.StreamIn, name)
	if err != nil {
		return nil, fmt.Errorf("binding consumer %s: %w", name, err)
	}
	return wc, nil
}

// recoverPanic keeps a bug in processing one message from crashing the
// process: the message is retried later, and the panic is logged.
func (p *Pipeline) recoverPanic(msg jetstream.Msg) {
	if v := recover(); v != nil {
		p.log.Error("panic while processing a message; it will be redelivered", slog.String("subject", msg.Subject()), slog.Any("panic", v))
		_ = msg.NakWithDelay(5 * time.Second)
	}
}

// sweepUnrouted looks for messages on bw.in subjects no route serves and
// dead-letters them, so they are never stranded in the work queue.
func (p *Pipeline) sweepUnrouted(ctx, work context.Context, workers *sync.WaitGroup, copts topology.ConsumerOptions) {
	var current []string
	var stopConsumer context.CancelFunc
	var consumerDone chan struct{}
	stop := func() {
		if stopConsumer != nil {
			stopConsumer()
			<-consumerDone
			stopConsumer = nil
		}
	}
	defer stop()
	tick := time.NewTicker(p.o.UnroutedInterval)
	defer tick.Stop()
	// drop stops and deletes the unrouted consumer.
	drop := func() {
		stop()
		if current == nil {
			return
		}
		dctx, cancel := context.WithTimeout(ctx, bindTimeout)
		defer cancel()
		if err := p.adminJS.DeleteConsumer(dctx, topology.StreamIn, topology.UnroutedConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			p.log.Warn("deleting the unrouted consumer", slog.String("error", err.Error()))
			return
		}
		current = nil
	}
	for {
		subjects, err := topology.UnroutedSubjects(ctx, p.js, p.knownRoutes())
		if err != nil && ctx.Err() == nil {
			p.log.Warn("looking for unrouted subjects failed", slog.String("error", err.Error()))
		}
		// Producers choose these subjects: a bounded batch per sweep keeps
		// the consumer's filter (one request) small; dead-lettered subjects
		// leave the work queue, so later sweeps reach the rest.
		total := len(subjects)
		subjects = subjects[:min(total, maxUnroutedPerSweep)]
		if err == nil && len(subjects) > 0 && !slices.Equal(subjects, current) {
			stop()
			uopts := copts
			uopts.MaxDeliver = int(p.hardBound(1)) + serverBackstop
			// A new consumer for every batch: a durable one whose filter
			// was updated was seen to count none of the new subjects'
			// messages as pending, and to deliver none.
			bctx, cancel := context.WithTimeout(ctx, bindTimeout)
			_, err := topology.RecreateUnroutedConsumer(bctx, p.adminJS, subjects, uopts)
			cancel()
			bind := func(ctx context.Context) (jetstream.Consumer, error) {
				return p.js.Consumer(ctx, topology.StreamIn, topology.UnroutedConsumer)
			}
			if err != nil {
				p.log.Warn("unrouted consumer", slog.Int("subjects", len(subjects)), slog.String("error", err.Error()))
			} else {
				current = subjects
				p.log.Warn("messages on subjects no route serves: dead-lettering them", slog.Int("subjects", total), slog.Int("this_sweep", len(subjects)))
				cctx, cancel := context.WithCancel(ctx)
				stopConsumer, consumerDone = cancel, make(chan struct{})
				go func() {
					defer close(consumerDone)
					p.consume(cctx, work, waitGroups{workers}, topology.UnroutedConsumer, &pullState{}, bind, 16, p.processUnrouted)
				}()
			}
		}
		if err == nil && len(subjects) == 0 && current != nil {
			// All dead-lettered: drop the consumer, whose filter would
			// otherwise keep those subjects from a route added later.
			drop()
		}
		select {
		case <-tick.C:
		case reply := <-p.release:
			// A route was added: the unrouted consumer's filter may hold
			// its subject, which must be the route's again at once.
			drop()
			close(reply)
		case <-ctx.Done():
			return
		}
	}
}

// releaseUnrouted stops and deletes the unrouted consumer (the sweeper
// makes it anew for what is still unrouted), so that a route added now
// owns its subject again. It waits (bounded) for the sweeper.
func (p *Pipeline) releaseUnrouted(ctx context.Context) {
	reply := make(chan struct{})
	select {
	case p.release <- reply:
	case <-ctx.Done():
		return
	}
	select {
	case <-reply:
	case <-ctx.Done():
	}
}

// knownRoutes are the routes whose subjects are not unrouted: those served
// and those this instance knows of but does not serve (a route that failed
// to build here may serve elsewhere: its messages are not dead-lettered
// and its consumer is not deleted by this instance).
func (p *Pipeline) knownRoutes() []string {
	names := p.routeNames()
	p.mu.RLock()
	defer p.mu.RUnlock()
	for n := range p.known {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// SetKnownRoutes tells the pipeline every route that exists (the route
// store's keys), served here or not.
func (p *Pipeline) SetKnownRoutes(names []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.known = map[string]bool{}
	for _, n := range names {
		p.known[n] = true
	}
}
