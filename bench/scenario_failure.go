package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/bench/internal/harness"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// Failure mix: 20% of target calls answer 503 and 5% hang past the
// timeout; both systems retry with the same policy (max 4 attempts,
// backoff 10ms doubling to 50ms, 100ms per call) and then give up (dead
// letter / poison queue).
const (
	failMaxAttempts = 4
	failTimeout     = 100 * time.Millisecond
	failHang        = 300 * time.Millisecond
)

func failureScenarios() []harness.Scenario {
	return []harness.Scenario{{
		Name:   "failure_mix",
		Title:  "Failure mix: 20% 503, 5% hang past the timeout, 64 in flight",
		Rounds: 3, Warmup: 0,
		Setup: func(ctx context.Context, quick bool) ([]harness.System, func(), error) {
			n := 1500
			if quick {
				n = 500
			}
			return failureSetup(ctx, 64, n)
		},
		Ratios: []harness.Ratio{
			{Name: "failure_mix_breakwater_vs_watermill", Num: "breakwater", Den: "watermill", Metric: "ops_per_s", HigherIsBetter: true},
		},
	}}
}

// flakyTarget fails a call by a hash of the message id and the call number,
// so both systems see the same failures.
func flakyTarget() http.Handler {
	var mu sync.Mutex
	calls := map[string]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := string(body)
		mu.Lock()
		calls[id]++
		n := calls[id]
		mu.Unlock()
		h := fnv.New32a()
		fmt.Fprintf(h, "%s/%d", id, n)
		switch v := h.Sum32() % 100; {
		case v < 20:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		case v < 25:
			select {
			case <-time.After(failHang):
			case <-r.Context().Done():
			}
			http.Error(w, "too late", http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	})
}

func failureSetup(ctx context.Context, inFlight, n int) ([]harness.System, func(), error) {
	e, err := newEnv(ctx, flakyTarget())
	if err != nil {
		return nil, nil, err
	}
	bw, err := breakwaterFailure(ctx, e, inFlight, n)
	if err != nil {
		e.close()
		return nil, nil, err
	}
	systems := []harness.System{bw}
	if wm, err := peerFailureSystem(ctx, e, inFlight, n); err != nil {
		e.close()
		return nil, nil, err
	} else if wm.Run != nil {
		systems = append(systems, wm)
	}
	return systems, e.close, nil
}

// breakwaterFailure runs the async system of scenario_async on a route
// with the failure mix's retry policy, and counts terminal outcomes per
// message from BW_OUT (through JetStream, where de-duplication applies).
func breakwaterFailure(ctx context.Context, e *env, inFlight, n int) (harness.System, error) {
	sys, err := breakwaterAsync(ctx, e, "mix", inFlight, n, fmt.Sprintf(`    timeout: %v
    max_attempts: %d
    backoff: {initial: 10ms, max: 50ms, multiplier: 2, jitter: 0.2}
`, failTimeout, failMaxAttempts))
	if err != nil {
		return sys, err
	}
	run := sys.Run
	sys.Run = func(ctx context.Context) (harness.Sample, error) {
		before, err := streamLastSeq(ctx, e.js, topology.StreamOut)
		if err != nil {
			return harness.Sample{}, err
		}
		s, err := run(ctx)
		if err != nil {
			return s, err
		}
		counts, err := outcomeCounts(ctx, e.js, topology.Out("mix"), before)
		if err != nil {
			return s, err
		}
		s.Extra = terminalFigures(counts, n)
		return s, nil
	}
	return sys, nil
}

func streamLastSeq(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// outcomeCounts reads every outcome on subject after sequence after and
// counts them per producer id and outcome.
func outcomeCounts(ctx context.Context, js jetstream.JetStream, subject string, after uint64) (map[string][]string, error) {
	c, err := js.OrderedConsumer(ctx, topology.StreamOut, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1})
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for {
		m, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break // no more within a second: all read
		}
		id := m.Headers().Get(headers.OriginalID)
		out[id] = append(out[id], m.Headers().Get(headers.Outcome))
	}
	return out, nil
}

// terminalFigures turns outcome counts into the scenario's exact counts:
// messages with no outcome (lost), more than one (duplicates), and the
// outcomes by kind.
func terminalFigures(counts map[string][]string, n int) map[string]float64 {
	x := map[string]float64{"lost_total": 0, "duplicates_total": 0, "ok_total": 0, "dead_total": 0}
	for _, o := range counts {
		if len(o) > 1 {
			x["duplicates_total"]++
		}
		for _, v := range o {
			switch v {
			case headers.OutcomeOK:
				x["ok_total"]++
			case headers.OutcomeDead:
				x["dead_total"]++
			}
		}
	}
	x["lost_total"] = float64(n - len(counts))
	return x
}
