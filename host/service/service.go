package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/flagstore"
	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/internal/binding"
	"github.com/breakwater-dev/breakwater/host/internal/cache"
	"github.com/breakwater-dev/breakwater/host/internal/overload"
	"github.com/breakwater-dev/breakwater/host/internal/pipeline"
	"github.com/breakwater-dev/breakwater/host/internal/syncpath"
	"github.com/breakwater-dev/breakwater/host/internal/telemetry"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
	"github.com/breakwater-dev/breakwater/host/modulestore"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// Service is a started Breakwater instance. Start it, Run it, and it stops
// when Run's context ends.
type Service struct {
	cfg     *config.Config
	log     *slog.Logger
	srv     *server.Server // nil with an external NATS
	links   links
	nc      *nats.Conn // links.worker
	js      jetstream.JetStream
	adminJS jetstream.JetStream
	pipe    *pipeline.Pipeline
	core    *attempt.Core
	http    *http.Server
	ln      net.Listener

	engine   *engine.Engine
	binder   *binding.Binder
	recorder *decisionlog.Recorder
	engineMu sync.Mutex      // guards engine, binder, recorder, runCtx
	runCtx   context.Context // Run's, once it runs
	guards   *overload.Set
	// routeWatch follows bw_routes (loadRoutes, then followRoutes);
	// knownRoutes are its keys at start (and the file-only routes).
	routeWatch  jetstream.KeyWatcher
	knownRoutes []string
	flags       *flagstore.Flags
	modules     *modulestore.Store
	metrics     *telemetry.Metrics

	// tracer is the tracer provider (tracing.*, or WithTracerProvider);
	// stopTracing flushes it at Close.
	tracer      trace.TracerProvider
	stopTracing func(context.Context) error

	closeOnce sync.Once
	closing   atomic.Bool
	// fatal receives the first error that makes the instance useless
	// (a NATS connection closed for good): Run returns it.
	fatal     chan error
	fatalOnce sync.Once
}

// Option adjusts a Service at Start.
type Option func(*Service)

// WithTracerProvider makes the service trace with tp (tests, embedding),
// instead of what the tracing section of the config sets up.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(s *Service) { s.tracer = tp }
}

// fail ends Run with err: the process exits and a supervisor restarts it,
// rather than sitting alive and useless.
func (s *Service) fail(err error) {
	s.fatalOnce.Do(func() {
		s.log.Error("fatal", slog.String("error", err.Error()))
		s.fatal <- err
	})
}

// Start connects (starting the embedded NATS server unless nats.url is set),
// creates the streams, buckets and consumers, builds the routes and opens
// the HTTP listener. On any error everything started so far is stopped: the
// process never runs half-configured.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (_ *Service, err error) {
	s := &Service{cfg: cfg, log: log, fatal: make(chan error, 1)}
	for _, o := range opts {
		o(s)
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if cfg.HTTP.Listen != "" {
		// Listen first: a taken port fails the start at once.
		if s.ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
			return nil, fmt.Errorf("http.listen %s: %w (is another runtime running? set http.listen to a free port)", cfg.HTTP.Listen, err)
		}
	}
	if s.tracer == nil {
		if s.tracer, s.stopTracing, err = tracing.New(ctx, tracing.Options{Endpoint: cfg.Tracing.Endpoint, Sampling: cfg.Tracing.Sampling, ServiceName: cfg.Tracing.ServiceName}); err != nil {
			return nil, err
		}
	}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	topo := topology.Options{
		Replicas:        cfg.Streams.Replicas,
		DuplicateWindow: cfg.Streams.DuplicateWindow,
		OutMaxAge:       cfg.Streams.OutMaxAge,
		DLQMaxAge:       cfg.Streams.DLQMaxAge,
		CacheMaxAge:     maxCacheTTL(cfg),

		DecisionsMaxAge:   cfg.Decisions.MaxAge,
		DecisionsMaxBytes: cfg.Decisions.MaxBytes,
	}
	if err := s.retryStartup(ctx, "creating streams and buckets", func(ctx context.Context) error {
		return topology.Ensure(ctx, s.adminJS, topo)
	}); err != nil {
		return nil, err
	}
	s.metrics = telemetry.New()
	if err := s.retryStartup(ctx, "opening flags", func(ctx context.Context) (err error) {
		s.flags, err = flagstore.Open(ctx, s.js, flagstore.Options{Logger: log, OnChange: s.metrics.Switch})
		return err
	}); err != nil {
		return nil, err
	}
	s.guards = newGuards(log, func(target string, _, to overload.State) { s.metrics.BreakerState(target, to.String()) })
	// The trust policy stored in JetStream binds every instance and client,
	// whatever its own modules.trusted_keys (merged into it by Open).
	var trust *modulestore.TrustPolicy
	if err := s.retryStartup(ctx, "opening the module store", func(ctx context.Context) (err error) {
		// The admin connection creates the buckets and merges the trusted
		// keys; the runtime then reads modules on the worker connection,
		// which may only read them.
		if _, err = modulestore.Open(ctx, s.adminJS, modulestore.Options{Replicas: cfg.Streams.Replicas, TrustedKeys: cfg.Modules.TrustedKeys}); err != nil {
			return err
		}
		if s.modules, err = modulestore.Bind(ctx, s.js, modulestore.Options{Replicas: cfg.Streams.Replicas}); err != nil {
			return err
		}
		trust, err = s.modules.Policy(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	if trust.Secure() {
		log.Info("secure mode: only modules signed by a trusted key are loaded", slog.Any("trusted_keys", trust.Keys))
	} else {
		log.Warn("modules are not verified: unsigned modules will run (set modules.trusted_keys or run `runtime module trust add` for secure mode)")
	}
	if err := s.retryStartup(ctx, "opening the cache", func(ctx context.Context) error {
		kv, err := s.js.KeyValue(ctx, topology.BucketCache)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", topology.BucketCache, err)
		}
		s.core = attempt.New(attempt.Options{Cache: cache.New(kv, cfg.Streams.BrokerTimeout), Switches: s.flags, Observer: s.metrics,
			Tracer: s.tracer.Tracer(tracing.Name), Logger: log})
		return nil
	}); err != nil {
		return nil, err
	}
	routes, err := s.loadRoutes(ctx)
	if err != nil {
		return nil, err
	}
	if s.pipe, err = pipeline.New(ctx, pipeline.Options{
		JS:          s.js,
		AdminJS:     s.adminJS,
		NC:          s.nc,
		Replies:     s.links.replies,
		Routes:      routes,
		KnownRoutes: s.knownRoutes,
		Logger:      log,
		Observer:    s.metrics,
		Core:        s.core,
		Sync: syncpath.New(syncpath.Options{NC: s.nc, Replies: s.links.replies, Core: s.core, Observer: s.metrics, Logger: log,
			Tracer: s.tracer.Tracer(tracing.Name)}),
		Tracer:             s.tracer.Tracer(tracing.Name),
		AckWait:            cfg.Streams.AckWait,
		BrokerTimeout:      cfg.Streams.BrokerTimeout,
		DuplicateWindow:    cfg.Streams.DuplicateWindow,
		InternalRetries:    cfg.Streams.InternalRetries,
		InternalRetryDelay: cfg.Streams.InternalRetryDelay,
		Replicas:           cfg.Streams.Replicas,
	}); err != nil {
		return nil, err
	}
	if s.ln != nil {
		s.http = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
		// Health endpoints answer from now on: /readyz says not ready
		// until Run has every route consuming.
		go func() {
			if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server stopped", slog.String("error", err.Error()))
			}
		}()
	}
	return s, nil
}

func maxCacheTTL(cfg *config.Config) time.Duration {
	var m time.Duration
	for _, r := range cfg.Routes {
		m = max(m, r.Cache.TTL, r.Cache.StaleIfError)
	}
	return m
}

// Flags is the instance's live view of bw_flags.
func (s *Service) Flags() *flagstore.Flags { return s.flags }

// NATSURL is the client URL of the NATS server the service uses.
func (s *Service) NATSURL() string {
	if s.srv != nil {
		return s.srv.ClientURL()
	}
	return s.nc.ConnectedUrl()
}

// HTTPAddr is the address the health endpoints listen on ("" when disabled).
func (s *Service) HTTPAddr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run processes work until ctx ends, then shuts down gracefully and closes
// everything Start opened.
func (s *Service) Run(ctx context.Context) error {
	defer s.Close()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The followers run on runCtx (a fatal error ends them too) and are
	// waited for before Close.
	var followers sync.WaitGroup
	defer followers.Wait()
	defer cancel()
	followers.Add(2)
	go func() { defer followers.Done(); s.pollConsumers(runCtx) }()
	go func() { defer followers.Done(); s.followRoutes(runCtx) }()
	s.engineMu.Lock()
	s.runCtx = runCtx
	if s.binder != nil {
		go s.followModules(runCtx)
	}
	s.engineMu.Unlock()
	s.log.Info("breakwater running", slog.Int("routes", len(s.pipe.RouteNames())), slog.String("nats", s.NATSURL()), slog.String("http", s.HTTPAddr()))
	fatal := make(chan error, 1) // what ended the run, if it was fatal
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		select {
		case err := <-s.fatal:
			fatal <- err
			cancel()
		case <-runCtx.Done():
		}
	}()
	err := s.pipe.Run(runCtx)
	cancel()
	<-watching
	s.log.Info("breakwater stopped")
	select {
	case f := <-fatal:
		return f
	case f := <-s.fatal: // failed while stopping
		return f
	default:
	}
	return err
}

// Close stops everything Start opened. It is safe to call more than once.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		if s.http != nil {
			shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = s.http.Shutdown(shutCtx)
			cancel()
		} else if s.ln != nil {
			_ = s.ln.Close()
		}
		if s.flags != nil {
			s.flags.Close()
		}
		s.engineMu.Lock()
		if s.recorder != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.recorder.Close(ctx)
			cancel()
		}
		s.engineMu.Unlock()
		for _, nc := range s.links.all() {
			_ = nc.Drain()
		}
		deadline := time.Now().Add(5 * time.Second)
		for _, nc := range s.links.all() {
			for !nc.IsClosed() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			nc.Close()
		}
		s.engineMu.Lock()
		if s.binder != nil {
			s.binder.Close(context.Background())
		}
		if s.engine != nil {
			_ = s.engine.Close(context.Background())
		}
		s.engineMu.Unlock()
		if s.srv != nil {
			s.srv.Shutdown()
			s.srv.WaitForShutdown()
		}
		if s.stopTracing != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.stopTracing(ctx); err != nil {
				s.log.Warn("flushing traces failed", slog.String("error", err.Error()))
			}
			cancel()
		}
	})
}

// startEngine starts the policy engine and the binder loading modules from
// modules.dir.
func (s *Service) startEngine(ctx context.Context) error {
	mc := s.cfg.Modules
	eng, err := engine.New(ctx, engine.Options{CacheDir: mc.CacheDir, Logger: s.log, PoolSize: mc.PoolSize, OnCall: s.metrics.ModuleCall})
	if err != nil {
		return err
	}
	s.engine = eng
	lim := engine.Limits{Fuel: int64(mc.Limits.Fuel), WallTime: mc.Limits.WallTime, MemoryPages: mc.Limits.MemoryPages, OutputBytes: mc.Limits.OutputBytes}
	// The store first; modules.dir serves modules not (yet) uploaded. In
	// secure mode (the stored policy, checked on every fetch) only the
	// store, which verifies signatures.
	src := binding.Sources{binding.StoreSource{Store: s.modules}, binding.DirSource{Dir: mc.Dir, Secure: s.modules.Secure}}
	c := mc.Canary
	s.binder = binding.New(eng, src, binding.Options{Defaults: lim, Log: s.log, OnSwap: s.metrics.ModuleVersion,
		Canary: binding.CanaryOptions{Window: c.Window, Margin: c.Margin, MinCalls: c.MinCalls},
		Withdraw: func(ctx context.Context, name string, gen int64, canary int, reason string) error {
			return s.modules.Withdraw(ctx, name, gen, canary, reason, instanceName())
		},
		OnRollback: s.metrics.CanaryRollback})
	s.recorder = decisionlog.NewRecorder(s.nc, decisionlog.RecorderOptions{Log: s.log, OnWritten: s.metrics.DecisionRecorded, OnDropped: s.metrics.DecisionRecordDropped})
	return nil
}

// instanceName names this process in what it writes for others to read
// (a canary's withdrawal).
func instanceName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// pollConsumers records the route consumers' state every few seconds.
func (s *Service) pollConsumers(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		for _, r := range s.pipe.RouteNames() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			c, err := s.js.Consumer(cctx, topology.StreamIn, topology.RouteConsumer(r))
			if err == nil {
				if info, err := c.Info(cctx); err == nil {
					s.metrics.ConsumerInfo(r, info.NumPending, uint64(info.NumAckPending), uint64(info.NumRedelivered))
				}
			}
			cancel()
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// followModules reloads a module whenever its current version changes in
// the store (push or rollback), so every instance follows within moments.
func (s *Service) followModules(ctx context.Context) {
	for attempt := 0; ctx.Err() == nil && attempt < 1000; attempt++ {
		changes, err := s.modules.Watch(ctx)
		if err != nil {
			s.log.Warn("watching the module store failed; retrying", slog.String("error", err.Error()))
		} else {
			for name := range changes {
				if err := s.binder.Reload(ctx, name); err != nil {
					s.log.Warn("module reload failed", slog.String("module", name), slog.String("error", err.Error()))
				}
			}
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
}

// Modules is the runtime's view of the module store: read-only (the worker
// connection may only read it).
func (s *Service) Modules() *modulestore.Store { return s.modules }

// LoadedModules lists module name → version in use.
func (s *Service) LoadedModules() map[string]string {
	if s.binder == nil {
		return nil
	}
	return s.binder.Loaded()
}
