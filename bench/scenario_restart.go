package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/bench/internal/harness"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// Restart recovery: a runtime process under steady load is killed with
// SIGKILL and started again at once. Figures: seconds from the kill until
// the outcome rate is back to 90% of what it was, messages lost (must be
// 0), and duplicate target calls (at-least-once: messages in flight at the
// kill are called again).
func restartScenarios() []harness.Scenario {
	return []harness.Scenario{{
		Name:   "restart_recovery",
		Title:  "Restart: SIGKILL under steady load, then restart",
		Rounds: 2, Warmup: 0,
		Setup: restartSetup,
	}}
}

const restartRate = 1000 // messages per second offered

func restartSetup(ctx context.Context, quick bool) ([]harness.System, func(), error) {
	var mu sync.Mutex
	calls := map[string]int{}
	e, err := newEnv(ctx, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		calls[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	if err != nil {
		return nil, nil, err
	}
	if _, err := runtimeBinary(ctx); err != nil {
		e.close()
		return nil, nil, err
	}
	cfg := filepath.Join(e.dir, "restart.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`nats:
  url: %s
http:
  listen: ""
log:
  level: info
streams:
  ack_wait: 3s
routes:
  - name: restart
    target:
      http:
        url: %s
    timeout: 1s
    concurrency: 64
`, e.srv.ClientURL(), e.up.URL)), 0o644); err != nil {
		e.close()
		return nil, nil, err
	}
	before, after := 2*time.Second, 4*time.Second
	if quick {
		before, after = 1500*time.Millisecond, 3*time.Second
	}
	sys := harness.System{Name: "breakwater", Run: func(ctx context.Context) (harness.Sample, error) {
		mu.Lock()
		clear(calls)
		mu.Unlock()
		x, err := restartRun(ctx, e, cfg, before, after)
		if err != nil {
			return harness.Sample{}, err
		}
		mu.Lock()
		for _, c := range calls {
			x["dup_calls_total"] += float64(c - 1)
		}
		mu.Unlock()
		return harness.Sample{Ops: int(x["outcomes"]), Elapsed: before + after, Extra: x}, nil
	}}
	return []harness.System{sys}, e.close, nil
}

// restartRun offers restartRate msgs/s for before+after, kills the runtime
// at before, restarts it, and waits (bounded) for every outcome.
func restartRun(ctx context.Context, e *env, cfg string, before, after time.Duration) (map[string]float64, error) {
	p, err := startRuntime(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() { p.kill() }()
	prefix := fmt.Sprintf("rs%d-", runSeq.Add(1))
	var mu sync.Mutex
	got := map[string]bool{}
	var times []time.Time
	sub, err := e.nc.Subscribe(topology.Out("restart"), func(m *nats.Msg) {
		id := m.Header.Get(headers.OriginalID)
		if !strings.HasPrefix(id, prefix) {
			return
		}
		mu.Lock()
		if !got[id] {
			got[id] = true
			times = append(times, time.Now())
		}
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1)

	start := time.Now()
	total := int((before + after).Seconds() * restartRate)
	killed := make(chan time.Time, 1)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < total; {
		<-tick.C
		due := int(time.Since(start).Seconds() * restartRate)
		for ; i < due && i < total; i++ {
			m := nats.NewMsg(topology.In("restart"))
			m.Header.Set(headers.MsgID, prefix+strconv.Itoa(i))
			m.Data = []byte(`{"n":` + strconv.Itoa(i) + `}`)
			if _, err := e.js.PublishMsgAsync(m); err != nil {
				return nil, err
			}
		}
		if len(killed) == 0 && time.Since(start) >= before {
			p.kill()
			killed <- time.Now()
			if p, err = startRuntime(ctx, cfg); err != nil {
				return nil, err
			}
		}
	}
	killedAt := <-killed
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	// The steady rate: outcomes in the second before the kill. Recovery:
	// the end of the first 200 ms window after the kill with at least 90%
	// of that rate.
	steady := 0
	for _, t := range times {
		if t.After(killedAt.Add(-time.Second)) && t.Before(killedAt) {
			steady++
		}
	}
	recover := -1.0
	const win = 200 * time.Millisecond
	for w := killedAt; w.Before(killedAt.Add(after)); w = w.Add(20 * time.Millisecond) {
		c := 0
		for _, t := range times {
			if !t.Before(w) && t.Before(w.Add(win)) {
				c++
			}
		}
		if float64(c) >= 0.9*float64(steady)*win.Seconds() {
			recover = w.Add(win).Sub(killedAt).Seconds()
			break
		}
	}
	return map[string]float64{
		"recover_s":          recover,
		"lost_total":         float64(total - len(got)),
		"dup_calls_total":    0,
		"steady_msgs_per_s":  float64(steady),
		"outcomes":           float64(len(got)),
		"offered_msgs_per_s": restartRate,
	}, nil
}
