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
	"github.com/breakwater-dev/breakwater/bench/internal/peers"
	"github.com/breakwater-dev/breakwater/host/headers"
)

// peerAsyncSystems are the hand-written worker and Watermill's router on
// the env's server and target, each with inFlight messages in flight.
func peerAsyncSystems(ctx context.Context, e *env, inFlight, n int) ([]harness.System, error) {
	stopHand, err := peers.StartHandWorker(ctx, e.js, peers.HandConfig{
		InStream: "HAND_IN", InSubject: "hand.in", OutStream: "HAND_OUT", OutSubject: "hand.out",
		TargetURL: e.up.URL, Concurrency: inFlight,
	})
	if err != nil {
		return nil, fmt.Errorf("hand-written worker: %w", err)
	}
	e.closers = append(e.closers, stopHand)
	hand, err := peerSystem(ctx, e, "handwritten", "hand.in", []string{"hand.out"}, inFlight, n, nil)
	if err != nil {
		return nil, err
	}
	wm, err := startWatermill(ctx, e, "wm", inFlight, n, 3, peers.BackoffConfig{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2, Jitter: 0.2}, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return []harness.System{hand, wm}, nil
}

// startWatermill starts Watermill's router on topics <name>.in/out/poison
// and returns its system.
func startWatermill(ctx context.Context, e *env, name string, inFlight, n, attempts int, b peers.BackoffConfig, timeout time.Duration) (harness.System, error) {
	up := strings.ToUpper(name)
	stop, err := peers.StartWatermill(ctx, e.srv.ClientURL(), peers.WatermillConfig{
		InStream: up + "_IN", InTopic: name + ".in", OutStream: up + "_OUT", OutTopic: name + ".out",
		PoisonStream: up + "_POISON", PoisonTopic: name + ".poison",
		TargetURL: e.up.URL, Concurrency: inFlight, MaxAttempts: attempts, Backoff: b, Timeout: timeout,
	})
	if err != nil {
		return harness.System{}, fmt.Errorf("watermill: %w", err)
	}
	e.closers = append(e.closers, stop)
	counts := func(ctx context.Context, before map[string]uint64) (map[string][]string, error) {
		out := map[string][]string{}
		for stream, outcome := range map[string]string{up + "_OUT": headers.OutcomeOK, up + "_POISON": headers.OutcomeDead} {
			if err := readStream(ctx, e.js, stream, before[stream], func(m jetstream.Msg) {
				id := resultID(m.Headers())
				out[id] = append(out[id], outcome)
			}); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return peerSystem(ctx, e, "watermill", name+".in", []string{name + ".out", name + ".poison"}, inFlight, n, &peerCounts{
		streams: []string{up + "_OUT", up + "_POISON"}, count: counts})
}

// peerCounts, when set, makes a peer system count its terminal outcomes
// per message after each run (exactly like the failure mix does for
// Breakwater).
type peerCounts struct {
	streams []string
	count   func(ctx context.Context, before map[string]uint64) (map[string][]string, error)
}

// resultID is the producer's id a peer's result or poison message carries.
func resultID(h nats.Header) string {
	if id := h.Get(headers.OriginalID); id != "" {
		return id
	}
	if id := h.Get("bw_in_id"); id != "" {
		return id
	}
	return h.Get(headers.MsgID)
}

// peerSystem publishes n messages to in per run and waits for each
// message's result on one of outs (a core subscription).
func peerSystem(ctx context.Context, e *env, name, in string, outs []string, inFlight, n int, pc *peerCounts) (harness.System, error) {
	var cur *window
	var prefix string
	lock := make(chan struct{}, 1)
	for _, out := range outs {
		sub, err := e.nc.Subscribe(out, func(m *nats.Msg) {
			id := resultID(m.Header)
			lock <- struct{}{}
			w, p := cur, prefix
			<-lock
			if w == nil || !strings.HasPrefix(id, p) {
				return
			}
			if i, err := strconv.Atoi(strings.TrimPrefix(id, p)); err == nil {
				w.done(i)
			}
		})
		if err != nil {
			return harness.System{}, err
		}
		_ = sub.SetPendingLimits(-1, -1)
		e.closers = append(e.closers, func() { _ = sub.Unsubscribe() })
	}
	return harness.System{Name: name, Run: func(ctx context.Context) (harness.Sample, error) {
		var before map[string]uint64
		if pc != nil {
			before = map[string]uint64{}
			for _, s := range pc.streams {
				seq, err := streamLastSeq(ctx, e.js, s)
				if err != nil {
					return harness.Sample{}, err
				}
				before[s] = seq
			}
		}
		w := newWindow(n, inFlight)
		p := fmt.Sprintf("%s%d-", name[:1], runSeq.Add(1))
		lock <- struct{}{}
		cur, prefix = w, p
		<-lock
		s, err := w.run(ctx, n, 2*time.Minute, func(i int) error {
			m := nats.NewMsg(in)
			m.Header.Set(headers.MsgID, p+strconv.Itoa(i))
			m.Data = []byte(`{"id":"` + p + strconv.Itoa(i) + `"}`)
			_, err := e.js.PublishMsgAsync(m)
			return err
		})
		if err != nil || pc == nil {
			return s, err
		}
		counts, err := pc.count(ctx, before)
		if err != nil {
			return s, err
		}
		s.Extra = terminalFigures(counts, n)
		return s, nil
	}}, nil
}

// readStream reads stream from after+1 to its end.
func readStream(ctx context.Context, js jetstream.JetStream, stream string, after uint64, f func(jetstream.Msg)) error {
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1})
	if err != nil {
		return err
	}
	for {
		m, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil // nothing more within a second: all read
		}
		f(m)
	}
}

// peerFailureSystem is Watermill's router with the failure mix's retry and
// poison-queue configuration.
func peerFailureSystem(ctx context.Context, e *env, inFlight, n int) (harness.System, error) {
	return startWatermill(ctx, e, "wmfail", inFlight, n, failMaxAttempts,
		peers.BackoffConfig{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2, Jitter: 0.2}, failTimeout)
}
