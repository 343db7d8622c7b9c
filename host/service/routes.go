package service

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// Routes are live: they are kept in the KV bucket bw_routes (one YAML
// document per route name) and every instance follows it. The config
// file's routes are written there at every start (the file wins for the
// routes it names); routes applied with `runtime route apply` stay until
// `runtime route rm`, whatever the file says.

// loadRoutes seeds bw_routes with the config file's routes, starts
// watching the bucket, and builds the routes it holds. A stored route that
// is invalid, or fails to build, is logged and left out; one of the config
// file fails the start, as a config error does.
func (s *Service) loadRoutes(ctx context.Context) ([]*attempt.Route, error) {
	docs, err := s.cfg.RouteDocuments()
	if err != nil {
		return nil, err
	}
	// A route too large for one message (a big static stub, say) cannot be
	// stored: it is served from the file alone, and is not live.
	fileOnly := map[int]bool{}
	for i, d := range docs {
		if len(d) > int(s.nc.MaxPayload())-1024 {
			fileOnly[i] = true
			s.log.Warn("route too large for the route store: served from the config file only, not live", slog.String("route", s.cfg.Routes[i].Name), slog.Int("bytes", len(d)))
		}
	}
	if err := s.retryStartup(ctx, "seeding routes", func(ctx context.Context) error {
		kv, err := s.adminJS.KeyValue(ctx, topology.BucketRoutes)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", topology.BucketRoutes, err)
		}
		for i, d := range docs {
			if fileOnly[i] {
				continue
			}
			if _, err := kv.Put(ctx, s.cfg.Routes[i].Name, d); err != nil {
				return fmt.Errorf("route %q: %w", s.cfg.Routes[i].Name, err)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var stored map[string][]byte
	if err := s.retryStartup(ctx, "reading routes", func(ctx context.Context) error {
		kv, err := s.js.KeyValue(ctx, topology.BucketRoutes)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", topology.BucketRoutes, err)
		}
		// The watch outlives ctx: Run follows it (followRoutes).
		w, err := kv.WatchAll(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
		stored = map[string][]byte{}
		for {
			select {
			case e := <-w.Updates():
				if e == nil {
					s.routeWatch = w // the current values are all in
					return nil
				}
				if e.Operation() == jetstream.KeyValuePut {
					stored[e.Key()] = e.Value()
				} else {
					delete(stored, e.Key())
				}
			case <-ctx.Done():
				_ = w.Stop()
				return fmt.Errorf("reading %s: %w", topology.BucketRoutes, ctx.Err())
			}
		}
	}); err != nil {
		return nil, err
	}
	inFile := map[string]bool{}
	for _, rc := range s.cfg.Routes {
		inFile[rc.Name] = true
	}
	// Every route that exists, served here or not: this instance must not
	// sweep its messages nor delete its consumer.
	s.knownRoutes = make([]string, 0, len(stored)+len(fileOnly))
	for name := range stored {
		s.knownRoutes = append(s.knownRoutes, name)
	}
	for i := range fileOnly {
		s.knownRoutes = append(s.knownRoutes, s.cfg.Routes[i].Name)
	}
	routes := make([]*attempt.Route, 0, len(stored)+len(fileOnly))
	for i := range fileOnly {
		r, err := s.buildRoute(ctx, &s.cfg.Routes[i])
		if err != nil {
			return nil, err
		}
		routes = append(routes, r)
	}
	for name, doc := range stored {
		if inFileOnly(s.cfg, fileOnly, name) {
			continue
		}
		r, err := s.routeFromDocument(ctx, name, doc)
		if err != nil {
			if inFile[name] {
				return nil, err
			}
			s.log.Error("stored route not served", slog.String("route", name), slog.String("error", err.Error()))
			continue
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// routeFromDocument parses, validates and builds a stored route.
func (s *Service) routeFromDocument(ctx context.Context, name string, doc []byte) (*attempt.Route, error) {
	rcs, err := s.cfg.ParseRoutes([][]byte{doc})
	if err != nil {
		return nil, fmt.Errorf("route %q in %s: %w", name, topology.BucketRoutes, err)
	}
	if rcs[0].Name != name {
		return nil, fmt.Errorf("route %q in %s names itself %q", name, topology.BucketRoutes, rcs[0].Name)
	}
	return s.buildRoute(ctx, &rcs[0])
}

// ensureEngine starts the module engine the first time a route names a
// module (and, once Run runs, the module follower).
func (s *Service) ensureEngine(ctx context.Context) error {
	s.engineMu.Lock()
	defer s.engineMu.Unlock()
	if s.binder != nil {
		return nil
	}
	if err := s.startEngine(ctx); err != nil {
		return err
	}
	if s.runCtx != nil {
		go s.followModules(s.runCtx)
	}
	return nil
}

// followRoutes applies every change of bw_routes to the pipeline: a new
// or changed route is built and served, a deleted one stops. A change that
// fails (an invalid document, a module that does not load) is logged, and
// the route keeps serving as it was.
func (s *Service) followRoutes(ctx context.Context) {
	defer func() { _ = s.routeWatch.Stop() }()
	known := map[string]bool{}
	for _, n := range s.knownRoutes {
		known[n] = true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-s.routeWatch.Updates():
			if !ok {
				s.log.Error("route watch ended: route changes are not followed until restart")
				return
			}
			if e == nil {
				continue
			}
			name := e.Key()
			if e.Operation() != jetstream.KeyValuePut {
				if s.routeStored(ctx, name) {
					continue // put back meanwhile: the put follows
				}
				delete(known, name)
				s.pipe.SetKnownRoutes(keys(known))
				if err := s.pipe.RemoveRoute(ctx, name); err != nil {
					s.log.Error("removing route", slog.String("route", name), slog.String("error", err.Error()))
				}
				continue
			}
			known[name] = true
			s.pipe.SetKnownRoutes(keys(known))
			r, err := s.routeFromDocument(ctx, name, e.Value())
			if err != nil {
				s.log.Error("route change not applied; the route serves as it was", slog.String("route", name), slog.String("error", err.Error()))
				continue
			}
			if err := s.pipe.UpsertRoute(ctx, r); err != nil {
				s.log.Error("route change", slog.String("route", name), slog.String("error", err.Error()))
			}
		}
	}
}

func inFileOnly(cfg *config.Config, fileOnly map[int]bool, name string) bool {
	for i := range fileOnly {
		if cfg.Routes[i].Name == name {
			return true
		}
	}
	return false
}

// routeStored reports whether bw_routes holds name now (a late delete of a
// route put back meanwhile must not remove it).
func (s *Service) routeStored(ctx context.Context, name string) bool {
	kv, err := s.js.KeyValue(ctx, topology.BucketRoutes)
	if err != nil {
		return false
	}
	_, err = kv.Get(ctx, name)
	return err == nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
