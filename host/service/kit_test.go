package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/service"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/testkit/servicetest"
)

// The helpers of this package's tests, thin over host/testkit.

// loadConfig writes yaml to a file and loads it.
func loadConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	return servicetest.Config(t, yaml)
}

// freePort returns a loopback port nobody listens on (now).
func freePort(t *testing.T) int {
	t.Helper()
	return testkit.FreePort(t)
}

// waitUntil polls cond (bounded: 10 s) and fails the test naming what.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, what, cond)
}

// waitUntilWithin is waitUntil with its own bound.
func waitUntilWithin(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, within, what, cond)
}

// wasmFile returns a committed module (modules/ or modules/fixtures/).
func wasmFile(t *testing.T, name string) []byte {
	t.Helper()
	return testkit.Module(t, name)
}

// moduleDir copies modules (from modules/ or modules/fixtures/) into a
// temporary modules.dir and returns the config line setting it.
func moduleDir(t *testing.T, names ...string) string {
	t.Helper()
	return fmt.Sprintf("modules:\n  dir: %s\n  cache_dir: %s\n", testkit.ModuleDir(t, names...), filepath.Join(os.TempDir(), "breakwater-engine-test-cache"))
}

// scrape returns the body of a GET of url (bounded: 5 s).
func scrape(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// grepLines returns the lines of s that contain fragment.
func grepLines(s, fragment string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, fragment) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// upstream is a real HTTP server whose answers a test scripts: fail(id, n)
// is the status of the n-th call (1-based) for a message id (the payload's
// "id"); 200 = success.
type upstream struct {
	*testkit.Upstream
	mu    sync.Mutex
	calls map[string]int
	sizes map[string]int                // body size of the last call per id
	fail  func(id string, call int) int // status to answer; 200 = success
}

func newUpstream(t *testing.T, fail func(id string, call int) int) *upstream {
	t.Helper()
	u := &upstream{Upstream: testkit.NewUpstream(t), calls: map[string]int{}, sizes: map[string]int{}, fail: fail}
	u.Respond(func(r *http.Request, body []byte, _ int) testkit.Reply {
		var p struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &p)
		u.mu.Lock()
		u.calls[p.ID]++
		u.sizes[p.ID] = len(body)
		n := u.calls[p.ID]
		f := u.fail
		u.mu.Unlock()
		status := f(p.ID, n)
		return testkit.Reply{
			Status: status,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   fmt.Sprintf(`{"id":%q,"call":%d,"status":%d,"idempotency_key":%q}`, p.ID, n, status, r.Header.Get("Idempotency-Key")),
		}
	})
	return u
}

func (u *upstream) setFail(f func(id string, call int) int) {
	u.mu.Lock()
	u.fail = f
	u.mu.Unlock()
}

func (u *upstream) callsOf(id string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[id]
}

func (u *upstream) totalCalls() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, c := range u.calls {
		n += c
	}
	return n
}

func (u *upstream) lastBodyLen(id string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sizes[id]
}

// startCluster starts a 3-node JetStream cluster in-process on loopback and
// returns its client URLs.
func startCluster(t *testing.T) []string {
	t.Helper()
	return testkit.NewCluster(t, 3).ClientURLs()
}

// testCluster is a 3-node JetStream cluster in-process on loopback whose
// nodes can be stopped and started again (same ports, same storage).
type testCluster struct {
	*testkit.Cluster
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	return &testCluster{testkit.NewCluster(t, 3)}
}

func (c *testCluster) start(i int)     { c.Start(i) }
func (c *testCluster) stop(i int)      { c.Stop(i) }
func (c *testCluster) urls() string    { return c.URLs() }
func (c *testCluster) waitMetaLeader() { c.WaitMetaLeader() }

// instance is a runtime that a test can stop (as a crash would: no grace)
// and start again.
type instance struct {
	svc  *service.Service
	in   *servicetest.Instance
	logs *syncBuffer
}

func startInstance(t *testing.T, yaml string) *instance {
	t.Helper()
	in := servicetest.StartService(t, loadConfig(t, yaml), servicetest.LogLevel(slog.LevelInfo))
	in.Run()
	return &instance{svc: in.Service, in: in, logs: in.Logs}
}

func (in *instance) stop() {
	if in.in != nil {
		_ = in.in.Stop()
	}
}

// waitReady waits (bounded) until the instance is ready and returns how
// long it took.
func (in *instance) waitReady(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	var rep = in.svc.Readiness(context.Background())
	if !testkit.Poll(within, func() bool {
		rep = in.svc.Readiness(context.Background())
		return rep.Status == "ready"
	}) {
		t.Fatalf("not ready within %v: %s", within, rep.Reason)
	}
	return time.Since(t0)
}
