package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/bench/internal/harness"
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
		out = append(out, harness.Scenario{
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
		})
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
	bw, err := breakwaterAsync(ctx, e, "bench", inFlight, n, "")
	if err != nil {
		e.close()
		return nil, nil, err
	}
	systems := []harness.System{raw, bw}
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
	var cur *window
	var prefix string
	lock := make(chan struct{}, 1)
	sub, err := e.nc.Subscribe(topology.Out(route), func(m *nats.Msg) {
		id := m.Header.Get(headers.OriginalID)
		lock <- struct{}{}
		w, p := cur, prefix
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
		return harness.System{}, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	e.closers = append(e.closers, func() { _ = sub.Unsubscribe() })
	return harness.System{Name: "breakwater", Run: func(ctx context.Context) (harness.Sample, error) {
		w := newWindow(n, inFlight)
		p := fmt.Sprintf("b%d-", runSeq.Add(1))
		lock <- struct{}{}
		cur, prefix = w, p
		<-lock
		return w.run(ctx, n, 2*time.Minute, func(i int) error {
			m := nats.NewMsg(topology.In(route))
			m.Header.Set(headers.MsgID, p+strconv.Itoa(i))
			m.Data = []byte(`{"id":"` + p + strconv.Itoa(i) + `"}`)
			_, err := e.js.PublishMsgAsync(m)
			return err
		})
	}}, nil
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
