package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/embedded"
	"github.com/breakwater-dev/breakwater/host/service"
)

// env is what a scenario's systems share: one NATS server with JetStream
// (file storage, loopback, random port), a client, and a loopback HTTP
// target. Every system runs against the same server and target.
type env struct {
	dir string
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	up  *httptest.Server
	// closers run in reverse order.
	closers []func()
}

// newEnv starts the server and the target (handler nil: answer 200 with a
// small JSON body).
func newEnv(ctx context.Context, handler http.Handler) (*env, error) {
	dir, err := os.MkdirTemp("", "bw-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	e.closers = append(e.closers, func() { _ = os.RemoveAll(dir) })
	if e.srv, err = embedded.Start(ctx, embedded.Options{Port: -1, StoreDir: filepath.Join(dir, "js")}); err != nil {
		e.close()
		return nil, err
	}
	e.closers = append(e.closers, func() { e.srv.Shutdown(); e.srv.WaitForShutdown() })
	if e.nc, err = nats.Connect(e.srv.ClientURL()); err != nil {
		e.close()
		return nil, err
	}
	e.closers = append(e.closers, e.nc.Close)
	e.js, _ = jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(4096))
	if handler == nil {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = w.Write([]byte(`{"price":1}`))
		})
	}
	e.up = httptest.NewServer(handler)
	e.closers = append(e.closers, e.up.Close)
	return e, nil
}

func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// startBreakwater starts a Breakwater instance on the env's server with
// routesYAML (a "routes:" list) and runs it until the env closes.
func (e *env) startBreakwater(ctx context.Context, routesYAML string) (*service.Service, error) {
	return e.startBreakwaterModules(ctx, "", routesYAML)
}

// startBreakwaterModules is startBreakwater with modules.dir set to modDir
// ("" leaves it unset), for routes naming built-in modules.
func (e *env) startBreakwaterModules(ctx context.Context, modDir, routesYAML string) (*service.Service, error) {
	modules := "  cache_dir: none\n"
	if modDir != "" {
		modules += fmt.Sprintf("  dir: %s\n", modDir)
	}
	yaml := fmt.Sprintf(`nats:
  url: %s
http:
  listen: ""
log:
  level: error
modules:
%sroutes:
%s`, e.srv.ClientURL(), modules, routesYAML)
	path := filepath.Join(e.dir, fmt.Sprintf("breakwater-%d.yaml", len(e.closers)))
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		return nil, err
	}
	svc, err := service.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = svc.Run(runCtx); close(done) }()
	e.closers = append(e.closers, func() { cancel(); <-done })
	return svc, nil
}
