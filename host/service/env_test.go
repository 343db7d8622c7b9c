package service_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/service"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// env is a running service on an embedded NATS server (random loopback
// port, temporary store) with a client connection and every outcome seen.
type env struct {
	t    *testing.T
	svc  *service.Service
	nc   *nats.Conn
	js   jetstream.JetStream
	logs *syncBuffer

	mu       sync.Mutex
	outcomes []*nats.Msg
	started  bool
	cancel   context.CancelFunc
	done     chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// baseConfig is prepended to every test's routes (see baseYAML).
const baseConfig = `
nats:
%s  embedded:
    port: -1
    store_dir: %s
%shttp:
  listen: 127.0.0.1:0
log:
  level: debug
streams:
  ack_wait: 5s
  duplicate_window: 1m
`

// baseYAML is baseConfig for storeDir, with the admin ops and usersYAML
// (list items under nats.embedded.users) when usersYAML is not "".
func baseYAML(storeDir, usersYAML string) string {
	if usersYAML == "" {
		return fmt.Sprintf(baseConfig, "", storeDir, "")
	}
	return fmt.Sprintf(baseConfig, "  user: "+adminUser+"\n  password: "+adminPassword+"\n", storeDir,
		"    users:\n      - {user: "+adminUser+", password: "+adminPassword+", role: admin}\n"+usersYAML)
}

// newEnv starts a service with routesYAML (a "routes:" section). The
// pipeline does not run until run is called, so a test can prepare the
// streams first.
func newEnv(t *testing.T, routesYAML string) *env {
	t.Helper()
	return newEnvAuth(t, "", routesYAML)
}

// admin is the operator identity of newEnvAuth's users.
const adminUser, adminPassword = "ops", "ops-secret"

// newEnvAuth is newEnv with embedded users (usersYAML, a list under
// nats.embedded.users; "" for none). With users, the test's client is the
// admin ops.
func newEnvAuth(t *testing.T, usersYAML, routesYAML string, opts ...service.Option) *env {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "breakwater.yaml")
	var clientOpts []nats.Option
	if usersYAML != "" {
		clientOpts = append(clientOpts, nats.UserInfo(adminUser, adminPassword), nats.CustomInboxPrefix("_INBOX."+adminUser))
	}
	yaml := baseYAML(filepath.Join(dir, "js"), usersYAML) + routesYAML
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	svc, err := service.Start(ctx, cfg, log, opts...)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	e := &env{t: t, svc: svc, logs: logs, done: make(chan error, 1)}
	t.Cleanup(e.stop)
	e.connectClient(svc.NATSURL(), clientOpts...)
	return e
}

// connectClient connects the test's client to url and records every
// outcome. Outcomes are read from the stream, as consumers should:
// JetStream's de-duplication applies there (a core subscriber may see a
// duplicate publish that the stream dropped).
func (e *env) connectClient(url string, opts ...nats.Option) {
	t := e.t
	t.Helper()
	var err error
	if e.nc, err = nats.Connect(url, opts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.nc.Close)
	if e.js, err = jetstream.New(e.nc); err != nil {
		t.Fatal(err)
	}
	outs, err := e.js.OrderedConsumer(context.Background(), topology.StreamOut, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := outs.Consume(func(m jetstream.Msg) {
		e.mu.Lock()
		e.outcomes = append(e.outcomes, &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		e.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
}

func (e *env) run() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.started = true
	go func() { e.done <- e.svc.Run(ctx) }()
}

func (e *env) stop() {
	if e.nc != nil {
		e.nc.Close()
	}
	if !e.started {
		e.svc.Close()
		return
	}
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(20 * time.Second):
		e.t.Error("service did not stop within 20s")
	}
	checkPermissions(e.t, e.logs.String())
	if e.t.Failed() {
		e.t.Logf("service log:\n%s", e.logs.String())
	}
}

// checkPermissions fails the test when one of the runtime's own
// connections was refused something: its least-privilege permissions
// must cover all the work it does.
func checkPermissions(t *testing.T, logs string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "Permissions Violation") {
			t.Errorf("the runtime was refused a permission it needs: %s", line)
		}
	}
}

// publish publishes payload on bw.in.<route> with msgID (and extra headers)
// and returns the stream sequence.
func (e *env) publish(route, msgID string, payload string, hdr ...string) *jetstream.PubAck {
	e.t.Helper()
	m := nats.NewMsg("bw.in." + route)
	m.Data = []byte(payload)
	if msgID != "" {
		m.Header.Set(headers.MsgID, msgID)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		m.Header.Set(hdr[i], hdr[i+1])
	}
	ack, err := e.js.PublishMsg(context.Background(), m)
	if err != nil {
		e.t.Fatalf("publish: %v", err)
	}
	return ack
}

// outcome waits (bounded) for the outcome of the message with msgID.
func (e *env) outcome(msgID string) *nats.Msg {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := e.find(msgID); m != nil {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no outcome for message %q within 20s", msgID)
	return nil
}

func (e *env) find(msgID string) *nats.Msg {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.outcomes {
		if m.Header.Get(headers.OriginalID) == msgID {
			return m
		}
	}
	return nil
}

// count returns how many outcomes were seen for msgID.
func (e *env) count(msgID string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, m := range e.outcomes {
		if m.Header.Get(headers.OriginalID) == msgID {
			n++
		}
	}
	return n
}

// logLine returns the first JSON log line containing every fragment.
func (e *env) logLine(fragments ...string) string {
	for _, line := range strings.Split(e.logs.String(), "\n") {
		ok := true
		for _, f := range fragments {
			if !strings.Contains(line, f) {
				ok = false
				break
			}
		}
		if ok {
			return line
		}
	}
	return ""
}

// deadLetters polls (bounded) until route has want dead letters and returns them.
func (e *env) deadLetters(route string, want int) []deadletter.Parked {
	e.t.Helper()
	var parked []deadletter.Parked
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		if parked, err = deadletter.List(context.Background(), e.js, route, 0); err != nil {
			e.t.Fatalf("dead letters of %s: %v", route, err)
		}
		if len(parked) >= want {
			break
		}
	}
	return parked
}

// startErr starts a service from path and returns the start error (closing
// the service if it started).
func startErr(t *testing.T, path string) error {
	t.Helper()
	cfg, err := config.Load(path, nil)
	if err != nil {
		return err
	}
	svc, err := service.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		svc.Close()
	}
	return err
}

// runService writes yaml to a file, starts a service from it and runs it
// until the test ends.
func runService(t *testing.T, yaml string) *service.Service {
	t.Helper()
	cfg := loadConfig(t, yaml)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	svc, err := service.Start(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; checkPermissions(t, logs.String()) })
	return svc
}
