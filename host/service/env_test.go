package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/testkit/servicetest"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// env is a running service on an embedded NATS server (random loopback
// port, temporary store) with a client connection and every outcome seen.
type env struct {
	t    *testing.T
	svc  *service.Service
	in   *servicetest.Instance // nil when the test made the env around its own service
	nc   *nats.Conn
	js   jetstream.JetStream
	logs *syncBuffer

	mu       sync.Mutex
	outcomes []*nats.Msg
}

// syncBuffer collects log output; safe for concurrent use.
type syncBuffer = testkit.LogBuffer

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
	var clientOpts []nats.Option
	if usersYAML != "" {
		clientOpts = append(clientOpts, nats.UserInfo(adminUser, adminPassword), nats.CustomInboxPrefix("_INBOX."+adminUser))
	}
	cfg := loadConfig(t, baseYAML(filepath.Join(dir, "js"), usersYAML)+routesYAML)
	in := servicetest.StartService(t, cfg, servicetest.With(opts...))
	e := &env{t: t, svc: in.Service, in: in, logs: in.Logs}
	t.Cleanup(e.stop)
	e.connectClient(in.NATSURL(), clientOpts...)
	return e
}

// connectClient connects the test's client to url and records every
// outcome. Outcomes are read from the stream, as consumers should:
// JetStream's de-duplication applies there (a core subscriber may see a
// duplicate publish that the stream dropped).
func (e *env) connectClient(url string, opts ...nats.Option) {
	t := e.t
	t.Helper()
	e.nc, e.js = testkit.Connect(t, url, opts...)
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

// run runs the pipeline (newEnv starts the service without it).
func (e *env) run() {
	e.t.Helper()
	e.in.Run()
}

func (e *env) stop() {
	if e.nc != nil {
		e.nc.Close()
	}
	if e.in == nil {
		return
	}
	if !e.in.Ran() {
		_ = e.in.Stop()
		return
	}
	if err := e.in.Stop(); err != nil && strings.Contains(err.Error(), "did not stop") {
		e.t.Error(err)
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
	var m *nats.Msg
	testkit.Eventually(e.t, 20*time.Second, fmt.Sprintf("the outcome of message %q", msgID), func() bool {
		m = e.find(msgID)
		return m != nil
	})
	return m
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
	return e.logs.Line(fragments...)
}

// deadLetters polls (bounded) until route has want dead letters and returns them.
func (e *env) deadLetters(route string, want int) []deadletter.Parked {
	e.t.Helper()
	var parked []deadletter.Parked
	testkit.Poll(20*time.Second, func() bool {
		var err error
		if parked, err = deadletter.List(context.Background(), e.js, route, 0); err != nil {
			e.t.Fatalf("dead letters of %s: %v", route, err)
		}
		return len(parked) >= want
	})
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
	in := servicetest.StartService(t, loadConfig(t, yaml), servicetest.LogLevel(slog.LevelInfo))
	in.Run()
	t.Cleanup(func() { _ = in.Stop(); checkPermissions(t, in.Logs.String()) })
	return in.Service
}
