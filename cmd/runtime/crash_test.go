package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// TestCrashRestart kills a child `runtime serve` with SIGKILL while
// thousands of messages are in flight and retries are pending, restarts it,
// and checks every message reaches exactly one terminal outcome.
func TestCrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it twice")
	}
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL semantics")
	}
	const total = 3000
	dir := t.TempDir()
	bin := testkit.GoBuild(t, ".", nil)

	up := testkit.NewUpstream(t)
	up.Respond(func(*http.Request, []byte, int) testkit.Reply {
		r := testkit.Reply{Body: `{"ok":true}`, Delay: time.Duration(rand.IntN(3)) * time.Millisecond}
		if rand.Float64() < 0.25 {
			r.Status, r.Body = http.StatusServiceUnavailable, "flaky\n"
		}
		return r
	})

	port := freePort(t)
	cfgPath := filepath.Join(dir, "breakwater.yaml")
	cfg := fmt.Sprintf(`
nats:
  embedded:
    port: %d
    store_dir: %s
http:
  listen: ""
log:
  level: warn
streams:
  ack_wait: 5s
  duplicate_window: 2m
routes:
  - name: crash
    target:
      http:
        url: %s
    timeout: 1s
    max_attempts: 4
    concurrency: 64
    backoff:
      initial: 100ms
      max: 1s
`, port, filepath.Join(dir, "js"), up.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	child := startChild(t, bin, cfgPath, dir, "first")
	nc, js := waitForRuntime(t, url)
	ctx := context.Background()

	// Publish everything, asynchronously, de-duplicated by id.
	for i := range total {
		m := nats.NewMsg(topology.In("crash"))
		m.Data = fmt.Appendf(nil, `{"n":%d}`, i)
		m.Header.Set(headers.MsgID, fmt.Sprintf("m-%d", i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishing did not complete within 30s")
	}

	// Kill mid-stream: some outcomes published, most work pending.
	outs, err := js.Stream(ctx, topology.StreamOut)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "a third of the outcomes before the kill", func() bool {
		info, err := outs.Info(ctx)
		return err == nil && info.State.Msgs >= total/3
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	nc.Close()
	t.Logf("killed with %d target calls made", up.Calls())

	startChild(t, bin, cfgPath, dir, "second")
	nc, js = waitForRuntime(t, url)
	defer nc.Close()
	outs, err = js.Stream(ctx, topology.StreamOut)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := js.Stream(ctx, topology.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 120*time.Second, "every outcome after the restart", func() bool {
		info, err := outs.Info(ctx)
		in, err2 := ins.Info(ctx)
		return err == nil && err2 == nil && info.State.Msgs >= total && in.State.Msgs == 0
	})

	// Exactly one terminal outcome per message.
	seen := map[string]string{}
	dead := 0
	oc, err := outs.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := outs.Info(ctx)
	batch, err := oc.FetchNoWait(int(info.State.Msgs) + 10)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		id := m.Headers().Get(headers.OriginalID)
		outcome := m.Headers().Get(headers.Outcome)
		if prev, dup := seen[id]; dup {
			t.Errorf("message %s has two outcomes: %s and %s", id, prev, outcome)
		}
		seen[id] = outcome
		switch outcome {
		case headers.OutcomeOK, headers.OutcomeCached, headers.OutcomeStub:
		case headers.OutcomeDead:
			dead++
		default:
			t.Errorf("message %s: outcome %q is not terminal", id, outcome)
		}
	}
	for i := range total {
		if _, ok := seen[fmt.Sprintf("m-%d", i)]; !ok {
			t.Errorf("message m-%d has no outcome: lost", i)
		}
	}
	dlq, err := js.Stream(ctx, topology.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	dinfo, _ := dlq.Info(ctx)
	if int(dinfo.State.Msgs) != dead {
		t.Errorf("%d dead outcomes but %d dead letters", dead, dinfo.State.Msgs)
	}
	if up.Calls() < total {
		t.Errorf("target called %d times for %d messages", up.Calls(), total)
	}
	t.Logf("%d messages, %d outcomes (%d dead), %d target calls (at-least-once)", total, len(seen), dead, up.Calls())
}

func freePort(t *testing.T) int {
	t.Helper()
	return testkit.FreePort(t)
}

var childMu sync.Mutex

func startChild(t *testing.T, bin, cfgPath, dir, name string) *exec.Cmd {
	t.Helper()
	childMu.Lock()
	defer childMu.Unlock()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s run log (tail):\n%s", name, b)
		}
	})
	return cmd
}

// waitForRuntime connects once the child's embedded server serves the
// streams and the route consumer exists.
func waitForRuntime(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	var nc *nats.Conn
	var js jetstream.JetStream
	waitFor(t, 60*time.Second, "the runtime to start", func() bool {
		var err error
		if nc == nil {
			if nc, err = nats.Connect(url, nats.Timeout(time.Second)); err != nil {
				nc = nil
				return false
			}
			js, _ = jetstream.New(nc)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = js.Consumer(ctx, topology.StreamIn, topology.RouteConsumer("crash"))
		return err == nil
	})
	return nc, js
}

// waitFor polls cond (bounded by limit) until it holds.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, limit, what, cond)
}
