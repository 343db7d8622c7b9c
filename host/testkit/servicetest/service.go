package servicetest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/service"
	"github.com/breakwater-dev/breakwater/host/testkit"
)

// Bounds of the service helpers.
const (
	// ReadyTimeout bounds Service's wait for readiness.
	ReadyTimeout = 30 * time.Second
	// StopTimeout bounds the wait for a running service to stop.
	StopTimeout = 30 * time.Second
)

// Config writes yaml to a file in t.TempDir() and loads it with
// host/config (defaults, BW_* environment, validation).
func Config(t testing.TB, yaml string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "breakwater.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatalf("servicetest: %v", err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("servicetest: config: %v", err)
	}
	return cfg
}

// ServiceOption changes how StartService and Service start a service.
type ServiceOption func(*serviceSettings)

type serviceSettings struct {
	level slog.Level
	opts  []service.Option
}

// LogLevel sets the level of the service's JSON log (default debug).
func LogLevel(l slog.Level) ServiceOption {
	return func(s *serviceSettings) { s.level = l }
}

// With passes options to service.Start.
func With(opts ...service.Option) ServiceOption {
	return func(s *serviceSettings) { s.opts = append(s.opts, opts...) }
}

// Instance is a service started in-process. Its JSON log goes to Logs.
type Instance struct {
	*service.Service
	Logs *testkit.LogBuffer

	t       testing.TB
	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan error
	stopped bool
	err     error
}

// StartService starts a service from cfg without running it (a test may
// prepare streams first, then call Run). It is stopped when the test ends.
func StartService(t testing.TB, cfg *config.Config, opts ...ServiceOption) *Instance {
	t.Helper()
	st := serviceSettings{level: slog.LevelDebug}
	for _, o := range opts {
		o(&st)
	}
	logs := &testkit.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: st.level}))
	svc, err := service.Start(context.Background(), cfg, log, st.opts...)
	if err != nil {
		t.Fatalf("servicetest: starting the service: %v\n%s", err, logs.String())
	}
	in := &Instance{Service: svc, Logs: logs, t: t}
	t.Cleanup(func() {
		// What Run returned is the test's business (it may have
		// provoked a fatal error); a run that does not end is not.
		if err := in.Stop(); err == errStop {
			t.Errorf("servicetest: %v", err)
		}
	})
	return in
}

// Service starts a service from the YAML config cfgYAML, runs it, and
// waits (bounded by ReadyTimeout) until it is ready. It is stopped when
// the test ends.
func Service(t testing.TB, cfgYAML string, opts ...ServiceOption) *Instance {
	t.Helper()
	in := StartService(t, Config(t, cfgYAML), opts...)
	in.Run()
	in.WaitReady(ReadyTimeout)
	return in
}

// Run runs the service in the background until Stop (or the test's end).
// A second call does nothing.
func (in *Instance) Run() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.done != nil || in.stopped {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel, in.done = cancel, make(chan error, 1)
	go func() { in.done <- in.Service.Run(ctx) }()
}

// Ran reports whether Run was called.
func (in *Instance) Ran() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.done != nil
}

// Stop ends the run (waiting at most StopTimeout) or, if the service never
// ran, closes it. It returns what Run returned, or an error when the run
// did not end in time. Later calls return the same.
func (in *Instance) Stop() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return in.err
	}
	in.stopped = true
	if in.done == nil {
		in.Service.Close()
		return nil
	}
	in.cancel()
	select {
	case in.err = <-in.done:
	case <-time.After(StopTimeout):
		in.err = errStop
	}
	return in.err
}

type stopError struct{}

func (stopError) Error() string { return "the service did not stop within " + StopTimeout.String() }

var errStop error = stopError{}

// WaitReady waits (bounded by within) until the service reports ready and
// returns how long that took.
func (in *Instance) WaitReady(within time.Duration) time.Duration {
	in.t.Helper()
	t0 := time.Now()
	var rep service.Readiness
	if !testkit.Poll(within, func() bool {
		rep = in.Readiness(context.Background())
		return rep.Status == "ready"
	}) {
		in.t.Fatalf("servicetest: the service is not ready within %v: %s\n%s", within, rep.Reason, in.Logs.String())
	}
	return time.Since(t0)
}
