package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/breakwater-dev/breakwater/bench/internal/harness"
	"github.com/breakwater-dev/breakwater/bench/internal/peers"
	"github.com/breakwater-dev/breakwater/host/client"
)

const syncSubject = "svc.echo"

// syncScenarios: the latency Breakwater's sync path adds to a request to a
// NATS service (a nats.go micro echo service on svc.echo), one request at
// a time:
//
//   - direct: nc.Request to the service;
//   - breakwater: the same through Breakwater (route "echo", nats target
//     svc.echo, timeout 1s), called with host/client (bw.call.echo);
//   - failsafe-go: failsafe-go Retry(3 attempts, 200ms·2ⁿ backoff, jitter
//     0.5) + CircuitBreaker(5 consecutive failures, 30s) + Timeout(1s)
//     around nc.RequestWithContext: the in-process alternative.
//
// "Added latency" (the target: ≤ 100 µs at p99) is the Extra
// added_p99_us of the breakwater system: in each of its runs every call
// is paired with a direct request made just before it, and added_p99_us is
// p99(breakwater) − p99(paired direct) of that run (added_p50_us likewise),
// averaged over the runs. failsafe-go reports the same two figures.
func syncScenarios() []harness.Scenario {
	return []harness.Scenario{{
		Name:   "sync_overhead",
		Title:  "Sync path: request to a NATS service, direct vs through Breakwater vs failsafe-go in process (added_p99_us: Breakwater's added p99 latency, target ≤ 100 µs)",
		Setup:  syncSetup,
		Rounds: 6, Warmup: 2,
		CDF: true,
		Ratios: []harness.Ratio{
			// Run to run, breakwater/direct at p50 moved by up to ±13 % in
			// quick runs (the direct system's runs are unpaired), and
			// breakwater/failsafe-go by up to 28 % when run right after the
			// test suite: none is guarded.
			{Name: "breakwater_vs_direct_p50", Num: "breakwater", Den: "direct", Metric: "p50"},
			{Name: "breakwater_vs_direct_p99", Num: "breakwater", Den: "direct", Metric: "p99"},
			{Name: "failsafe_vs_direct_p50", Num: "failsafe-go", Den: "direct", Metric: "p50"},
			{Name: "breakwater_vs_failsafe_p50", Num: "breakwater", Den: "failsafe-go", Metric: "p50"},
		},
	}}
}

func syncRequestsPerRun(quick bool) int {
	if quick {
		return 5000
	}
	return 15000
}

func syncSetup(ctx context.Context, quick bool) ([]harness.System, func(), error) {
	n := syncRequestsPerRun(quick)
	e, err := newEnv(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) ([]harness.System, func(), error) { e.close(); return nil, nil, err }

	// The service has a connection of its own, as a real one would.
	svcConn, err := nats.Connect(e.srv.ClientURL())
	if err != nil {
		return fail(err)
	}
	e.closers = append(e.closers, svcConn.Close)
	svc, err := micro.AddService(svcConn, micro.Config{Name: "echo", Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{Subject: syncSubject, Handler: micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(r.Data()) })}})
	if err != nil {
		return fail(err)
	}
	e.closers = append(e.closers, func() { _ = svc.Stop() })
	if err := svcConn.Flush(); err != nil {
		return fail(err)
	}

	bw, err := e.startBreakwater(ctx, fmt.Sprintf(`
  - name: echo
    target:
      nats:
        subject: %s
    timeout: 1s
`, syncSubject))
	if err != nil {
		return fail(err)
	}
	ready := false
	for range 500 {
		if bw.Ready(ctx) == nil {
			ready = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !ready {
		return fail(fmt.Errorf("breakwater not ready after 5s: %v", bw.Ready(ctx)))
	}
	c, err := client.New(e.nc)
	if err != nil {
		return fail(err)
	}
	fs := peers.NewFailsafeRequester(e.nc, syncSubject, peers.SyncConfig{Timeout: time.Second, MaxAttempts: 3, Backoff: peers.DefaultBackoff})

	payload := []byte(`{"id":"sku-1","qty":1}`)
	direct := func(ctx context.Context) error {
		m, err := e.nc.Request(syncSubject, payload, time.Second)
		if err == nil && len(m.Data) != len(payload) {
			err = fmt.Errorf("direct: unexpected reply %q", m.Data)
		}
		return err
	}
	viaBW := func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		res, err := c.Call(cctx, "echo", payload)
		if err == nil && (res.Outcome != "ok" || len(res.Payload) != len(payload)) {
			err = fmt.Errorf("breakwater: outcome %q payload %q", res.Outcome, res.Payload)
		}
		return err
	}
	viaFailsafe := func(ctx context.Context) error {
		m, err := fs.Request(ctx, payload)
		if err == nil && len(m.Data) != len(payload) {
			err = fmt.Errorf("failsafe-go: unexpected reply %q", m.Data)
		}
		return err
	}
	for _, f := range []func(context.Context) error{direct, viaBW, viaFailsafe} {
		if err := f(ctx); err != nil {
			return fail(err)
		}
	}
	systems := []harness.System{
		syncSystem("direct", direct, nil, n),
		syncSystem("breakwater", viaBW, direct, n),
		syncSystem("failsafe-go", viaFailsafe, direct, n),
	}
	return systems, e.close, nil
}

// syncSystem makes n calls one at a time, each preceded (when paired is
// set) by a paired direct request, timed apart, for the added latency.
func syncSystem(name string, call, paired func(context.Context) error, n int) harness.System {
	return harness.System{Name: name, Run: func(ctx context.Context) (harness.Sample, error) {
		lat := make([]time.Duration, 0, n)
		var base []time.Duration
		if paired != nil {
			base = make([]time.Duration, 0, n)
		}
		var elapsed time.Duration
		for range n {
			if err := ctx.Err(); err != nil {
				return harness.Sample{}, err
			}
			if paired != nil {
				t0 := time.Now()
				if err := paired(ctx); err != nil {
					return harness.Sample{}, err
				}
				base = append(base, time.Since(t0))
			}
			t0 := time.Now()
			if err := call(ctx); err != nil {
				return harness.Sample{}, err
			}
			d := time.Since(t0)
			elapsed += d
			lat = append(lat, d)
		}
		s := harness.Sample{Latencies: lat, Ops: n, Elapsed: elapsed}
		if paired != nil {
			sorted := slices.Clone(lat)
			slices.Sort(sorted)
			slices.Sort(base)
			us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
			s.Extra = map[string]float64{
				"added_p50_us": us(harness.Percentile(sorted, 50) - harness.Percentile(base, 50)),
				"added_p99_us": us(harness.Percentile(sorted, 99) - harness.Percentile(base, 99)),
			}
		}
		return s, nil
	}}
}
