package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/bench/internal/harness"
	"github.com/breakwater-dev/breakwater/host/embedded"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// asyncScenarios measure the async success path at 1, 16 and 256 messages
// in flight: msgs/s and publish → result latency, for raw JetStream (the
// ceiling), a hand-written nats.go worker doing the same JetStream work as
// Breakwater's success path, Watermill's router, and Breakwater.
func asyncScenarios() []harness.Scenario {
	var out []harness.Scenario
	for _, inFlight := range []int{1, 16, 256} {
		s := fmt.Sprintf("%d", inFlight)
		sc := harness.Scenario{
			Name:   "async_success_" + s,
			Title:  fmt.Sprintf("Async path, success, %d in flight (publish → result)", inFlight),
			Rounds: 6, Warmup: 1, CDF: inFlight == 256,
			Setup: func(ctx context.Context, quick bool) ([]harness.System, func(), error) {
				return asyncSetup(ctx, inFlight, asyncMessages(inFlight, quick))
			},
			Ratios: []harness.Ratio{
				{Name: "breakwater_vs_handwritten_" + s, Num: "breakwater", Den: "handwritten", Metric: "ops_per_s", HigherIsBetter: true, Guard: inFlight == 256, Target: target(inFlight == 256, 1.0)},
				{Name: "breakwater_vs_watermill_" + s, Num: "breakwater", Den: "watermill", Metric: "ops_per_s", HigherIsBetter: true, Target: target(inFlight == 256, 1.0)},
				{Name: "breakwater_vs_raw_jetstream_" + s, Num: "breakwater", Den: "raw-jetstream", Metric: "ops_per_s", HigherIsBetter: true},
			},
		}
		if againstRev != "" {
			sc.Title += fmt.Sprintf("; breakwater and breakwater@%s run as processes (--against)", againstRev)
			sc.Ratios = append(sc.Ratios, harness.Ratio{Name: "breakwater_vs_" + againstRev, Num: "breakwater", Den: "breakwater@" + againstRev, Metric: "ops_per_s", HigherIsBetter: true})
		}
		out = append(out, sc)
	}
	return out
}

func target(on bool, v float64) float64 {
	if on {
		return v
	}
	return 0
}

// asyncMessages is the messages per run: enough for a stable rate, few
// enough for the quick mode's budget.
func asyncMessages(inFlight int, quick bool) int {
	n := map[int]int{1: 300, 16: 2000, 256: 6000}[inFlight]
	if quick {
		n /= 3
	}
	return n
}

func asyncSetup(ctx context.Context, inFlight, n int) ([]harness.System, func(), error) {
	e, err := newEnv(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	raw, err := rawJetStream(ctx, e, inFlight, n)
	if err != nil {
		e.close()
		return nil, nil, err
	}
	var systems []harness.System
	if againstRev == "" {
		bw, err := breakwaterAsync(ctx, e, "bench", inFlight, n, "")
		if err != nil {
			e.close()
			return nil, nil, err
		}
		systems = []harness.System{raw, bw}
	} else {
		// --against: the current tree's runtime and the other revision's,
		// both as child processes (the in-process service can only be the
		// current tree's), each on a NATS server of its own (two runtimes
		// on one server would remove each other's route consumers).
		cur, err := runtimeBinary(ctx)
		if err == nil {
			var rev string
			if rev, err = revBinary(ctx); err == nil {
				var bw, bwRev harness.System
				if bw, err = breakwaterProc(ctx, e, "breakwater", cur, inFlight, n); err == nil {
					if bwRev, err = breakwaterProc(ctx, e, "breakwater@"+againstRev, rev, inFlight, n); err == nil {
						systems = []harness.System{raw, bw, bwRev}
					}
				}
			}
		}
		if err != nil {
			e.close()
			return nil, nil, err
		}
	}
	peers, err := peerAsyncSystems(ctx, e, inFlight, n)
	if err != nil {
		e.close()
		return nil, nil, err
	}
	return append(systems, peers...), e.close, nil
}

// rawJetStream is the ceiling: publish to a work-queue stream, consume with
// a durable pull consumer, ack. Latency is publish → delivery.
func rawJetStream(ctx context.Context, e *env, inFlight, n int) (harness.System, error) {
	s, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	if err != nil {
		return harness.System{}, err
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 65536})
	if err != nil {
		return harness.System{}, err
	}
	var cur *window
	var curMu = make(chan struct{}, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		i, _ := strconv.Atoi(m.Headers().Get("I"))
		curMu <- struct{}{}
		w := cur
		<-curMu
		if w != nil {
			w.done(i)
		}
	}, jetstream.PullMaxMessages(max(inFlight, 16)))
	if err != nil {
		return harness.System{}, err
	}
	e.closers = append(e.closers, cc.Stop)
	return harness.System{Name: "raw-jetstream", Run: func(ctx context.Context) (harness.Sample, error) {
		w := newWindow(n, inFlight)
		curMu <- struct{}{}
		cur = w
		<-curMu
		run := runSeq.Add(1)
		return w.run(ctx, n, 2*time.Minute, func(i int) error {
			m := nats.NewMsg("raw.x")
			m.Header.Set("I", strconv.Itoa(i))
			m.Header.Set(headers.MsgID, fmt.Sprintf("r%d-%d", run, i))
			m.Data = []byte(`{"id":"x"}`)
			_, err := e.js.PublishMsgAsync(m)
			return err
		})
	}}, nil
}

// breakwaterAsync is a Breakwater route to the env's target (native
// policies, no cache: the same JetStream work as the hand-written worker;
// extra is YAML added to the route). Latency is publish → outcome on
// bw.out.<route>.
func breakwaterAsync(ctx context.Context, e *env, route string, inFlight, n int, extra string) (harness.System, error) {
	svc, err := e.startBreakwater(ctx, fmt.Sprintf(`  - name: %s
    target:
      http:
        url: %s
    concurrency: %d
%s`, route, e.up.URL, max(inFlight, 1), extra))
	if err != nil {
		return harness.System{}, err
	}
	if err := waitReady(ctx, svc.Ready); err != nil {
		return harness.System{}, err
	}
	sys, _, err := routeSystem(e, e.nc, e.js, "breakwater", route, inFlight, n, routeOptions{})
	return sys, err
}

// breakwaterProc is breakwaterAsync with the runtime binary bin run as a
// child process, on a NATS server of its own (same options as the env's)
// and the env's target.
func breakwaterProc(ctx context.Context, e *env, name, bin string, inFlight, n int) (harness.System, error) {
	dir := filepath.Join(e.dir, fmt.Sprintf("proc-%d", len(e.closers)))
	srv, err := embedded.Start(ctx, embedded.Options{Port: -1, StoreDir: filepath.Join(dir, "js")})
	if err != nil {
		return harness.System{}, err
	}
	e.closers = append(e.closers, func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return harness.System{}, err
	}
	e.closers = append(e.closers, nc.Close)
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	cfg := filepath.Join(dir, "runtime.yaml")
	// Log level info: startRuntimeBin waits for "breakwater running"; the
	// success path logs nothing at that level.
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`nats:
  url: %s
http:
  listen: ""
log:
  level: info
modules:
  cache_dir: none
routes:
  - name: bench
    target:
      http:
        url: %s
    concurrency: %d
`, srv.ClientURL(), e.up.URL, max(inFlight, 1))), 0o644); err != nil {
		return harness.System{}, err
	}
	p, err := startRuntimeBin(ctx, bin, cfg)
	if err != nil {
		return harness.System{}, fmt.Errorf("%s: %w", name, err)
	}
	e.closers = append(e.closers, p.kill)
	sys, _, err := routeSystem(e, nc, js, name, "bench", inFlight, n, routeOptions{})
	return sys, err
}

// routeOptions tune routeSystem.
type routeOptions struct {
	// payload is message i's body (id is its message id); nil:
	// {"id":"<id>"}.
	payload func(id string, i int) []byte
	// countOutcomes adds to each sample the number of outcomes of each
	// kind (Extra "<outcome>_total": ok_total, cached_total…).
	countOutcomes bool
}

// routeSystem is the system name publishing n messages per run (inFlight
// at a time) to bw.in.<route> through js and waiting for each one's
// outcome on bw.out.<route> (a core subscription on nc). It also returns
// its run function, for a run of another length (warming a cache).
func routeSystem(e *env, nc *nats.Conn, js jetstream.JetStream, name, route string, inFlight, n int, o routeOptions) (harness.System, func(context.Context, int) (harness.Sample, error), error) {
	var cur *window
	var prefix string
	var counts map[string]float64
	lock := make(chan struct{}, 1)
	sub, err := nc.Subscribe(topology.Out(route), func(m *nats.Msg) {
		id := m.Header.Get(headers.OriginalID)
		lock <- struct{}{}
		w, p := cur, prefix
		if w != nil && counts != nil && strings.HasPrefix(id, p) {
			counts[m.Header.Get(headers.Outcome)+"_total"]++
		}
		<-lock
		if w == nil || !strings.HasPrefix(id, p) {
			return
		}
		i, err := strconv.Atoi(strings.TrimPrefix(id, p))
		if err == nil {
			w.done(i)
		}
	})
	if err != nil {
		return harness.System{}, nil, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	e.closers = append(e.closers, func() { _ = sub.Unsubscribe() })
	payload := o.payload
	if payload == nil {
		payload = func(id string, _ int) []byte { return []byte(`{"id":"` + id + `"}`) }
	}
	run := func(ctx context.Context, n int) (harness.Sample, error) {
		w := newWindow(n, inFlight)
		p := fmt.Sprintf("b%d-", runSeq.Add(1))
		lock <- struct{}{}
		cur, prefix = w, p
		if o.countOutcomes {
			counts = map[string]float64{}
		}
		<-lock
		s, err := w.run(ctx, n, 2*time.Minute, func(i int) error {
			id := p + strconv.Itoa(i)
			m := nats.NewMsg(topology.In(route))
			m.Header.Set(headers.MsgID, id)
			m.Data = payload(id, i)
			_, err := js.PublishMsgAsync(m)
			return err
		})
		if err == nil && o.countOutcomes {
			lock <- struct{}{}
			s.Extra = counts
			counts = nil
			<-lock
		}
		return s, err
	}
	return harness.System{Name: name, Run: func(ctx context.Context) (harness.Sample, error) { return run(ctx, n) }}, run, nil
}

// waitReady polls ready (bounded) until it reports nil.
func waitReady(ctx context.Context, ready func(context.Context) error) error {
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err = ready(ctx); err == nil {
			return nil
		}
	}
	return fmt.Errorf("not ready within 30s: %w", err)
}
