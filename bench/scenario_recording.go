package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/bench/internal/harness"
	"github.com/breakwater-dev/breakwater/bench/internal/peers"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/modulestore"
)

// recordingScenarios measure what decision records and a shadow cost on
// the async path (issue #12): one Breakwater instance, one target
// answering 200, four routes each judging every answer with the standard
// wasm classifier (classify-json-error, one module decision per message),
// 256 in flight:
//
//   - none: modules.record 0 (nothing recorded);
//   - record-1pct: modules.record 0.01;
//   - record-100pct: modules.record 1 (one record per message);
//   - shadow: modules.record 0, its own module (classify-shadowed, pushed
//     to the module store twice) at v1 with v2 as its shadow: every
//     decision the shadow gets to make is recorded (shadows are bounded:
//     a decision made while too many shadow calls run is skipped).
//
// Each sample reports records_total, the records written to BW_DECISIONS
// during the run (the stream's last sequence before and after, once it
// stopped growing), and records_per_msg.
func recordingScenarios() []harness.Scenario {
	return []harness.Scenario{{
		Name:  "decision_recording",
		Title: "Decision records and a shadow on every classify decision (wasm classify-json-error), async, 256 in flight: record 1% / 100% / shadow vs no recording",
		// Two warmup rounds, so that a quick run keeps one: the first run
		// fills each module's instance pool. Nine rounds: four systems of
		// short runs each, and the ratios are close to 1.
		Rounds: 9, Warmup: 2,
		Setup: recordingSetup,
		Ratios: []harness.Ratio{
			{Name: "record_1pct_vs_none", Num: "record-1pct", Den: "none", Metric: "ops_per_s", HigherIsBetter: true},
			{Name: "record_100pct_vs_none", Num: "record-100pct", Den: "none", Metric: "ops_per_s", HigherIsBetter: true},
			{Name: "shadow_vs_none", Num: "shadow", Den: "none", Metric: "ops_per_s", HigherIsBetter: true},
		},
	}}
}

// recordingMessages is the messages per run: longer than the other
// feature scenarios' in a full run, since the differences measured are a
// few per cent.
func recordingMessages(quick bool) int {
	if quick {
		return 2000
	}
	return 10000
}

// shadowedModule is the store module of the shadowed route: v1 current,
// v2 its shadow (both classify-json-error).
const shadowedModule = "classify-shadowed"

// classifyConfig is the routes' classify config, also the dry run's.
const classifyConfig = `{"error_field":"error"}`

func recordingSetup(ctx context.Context, quick bool) ([]harness.System, func(), error) {
	n := recordingMessages(quick)
	e, err := newEnv(ctx, nil) // the target answers 200 {"price":1}
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) ([]harness.System, func(), error) { e.close(); return nil, nil, err }
	modDir, err := e.moduleDir("classify-json-error")
	if err != nil {
		return fail(err)
	}
	if err := pushShadowed(ctx, e); err != nil {
		return fail(fmt.Errorf("module store: %w", err))
	}
	// The instance binds classify-shadowed from the store (v1) and applies
	// its rollout (the shadow v2) when it starts.
	svc, err := e.startBreakwaterModules(ctx, modDir, fmt.Sprintf(`  - name: recnone
    target:
      http:
        url: %[1]s
    concurrency: %[2]d
    modules:
      record: 0
      classify: {name: classify-json-error, config: {error_field: error}}
  - name: rec1
    target:
      http:
        url: %[1]s
    concurrency: %[2]d
    modules:
      record: 0.01
      classify: {name: classify-json-error, config: {error_field: error}}
  - name: rec100
    target:
      http:
        url: %[1]s
    concurrency: %[2]d
    modules:
      record: 1
      classify: {name: classify-json-error, config: {error_field: error}}
  - name: recshadow
    target:
      http:
        url: %[1]s
    concurrency: %[2]d
    modules:
      record: 0
      classify: {name: %[3]s, config: {error_field: error}}
`, e.up.URL, featureInFlight, shadowedModule))
	if err != nil {
		return fail(err)
	}
	if err := waitReady(ctx, svc.Ready); err != nil {
		return fail(err)
	}
	if got := svc.LoadedModules()[shadowedModule]; got != "v1" {
		return fail(fmt.Errorf("%s: the instance runs %q, want v1 (loaded: %v)", shadowedModule, got, svc.LoadedModules()))
	}
	stream, err := e.js.Stream(ctx, decisionlog.Stream)
	if err != nil {
		return fail(err)
	}
	rc := &recordCounter{stream: stream}
	var systems []harness.System
	var shadowRun func(context.Context, int) (harness.Sample, error)
	for _, s := range []struct{ name, route string }{
		{"none", "recnone"}, {"record-1pct", "rec1"}, {"record-100pct", "rec100"}, {"shadow", "recshadow"},
	} {
		sys, run, err := routeSystem(e, e.nc, e.js, s.name, s.route, featureInFlight, n, routeOptions{countOutcomes: true})
		if err != nil {
			return fail(err)
		}
		if s.route == "recshadow" {
			shadowRun = run
		}
		sys.Run = rc.counting(n, expectOutcomes(s.name, headers.OutcomeOK, n, sys.Run))
		systems = append(systems, sys)
	}
	// The shadow must be running before anything is measured: its records
	// (role shadow, v2, agreeing with v1) reach BW_DECISIONS.
	if err := waitShadow(ctx, stream, rc, shadowRun); err != nil {
		return fail(err)
	}
	return systems, e.close, nil
}

// pushShadowed stores classify-json-error as v1 and v2 of shadowedModule
// (each dry-run by the engine first, as `runtime module push` does), makes
// v1 current and v2 its shadow.
func pushShadowed(ctx context.Context, e *env) error {
	wasm, err := peers.RepoFile("modules/classify-json-error.wasm")
	if err != nil {
		return err
	}
	store, err := modulestore.Open(ctx, e.js, modulestore.Options{})
	if err != nil {
		return err
	}
	eng, err := engine.New(ctx, engine.Options{PoolSize: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer func() { _ = eng.Close(context.Background()) }()
	validate := func(ctx context.Context, wasm []byte) (modulestore.Info, error) {
		info, err := eng.DryRun(ctx, wasm, engine.DefaultLimits(), engine.DryRunOptions{Config: []byte(classifyConfig)})
		if err != nil {
			return modulestore.Info{}, err
		}
		kinds := make([]string, len(info.Kinds))
		for i, k := range info.Kinds {
			kinds[i] = string(k)
		}
		return modulestore.Info{Kinds: kinds, ABIVersion: info.ABIVersion, Warnings: info.Warnings}, nil
	}
	for range 2 {
		if _, err := store.Push(ctx, shadowedModule, wasm, nil, validate, "bench"); err != nil {
			return err
		}
	}
	// The second push made v2 current: back to v1, then v2 beside it.
	if _, err := store.Rollback(ctx, shadowedModule, 1); err != nil {
		return err
	}
	if _, err := store.SetShadow(ctx, shadowedModule, 2, validate, "bench"); err != nil {
		return err
	}
	return nil
}

// waitShadow sends a few messages through the shadowed route until a
// shadow record of it reaches BW_DECISIONS (bounded), and checks it.
func waitShadow(ctx context.Context, stream jetstream.Stream, rc *recordCounter, run func(context.Context, int) (harness.Sample, error)) error {
	subject := decisionlog.Subject("recshadow")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := run(ctx, 16); err != nil {
			return fmt.Errorf("shadowed route: %w", err)
		}
		if _, err := rc.settle(ctx); err != nil {
			return err
		}
		m, err := stream.GetLastMsgForSubject(ctx, subject)
		if err == nil {
			var rec decisionlog.Record
			if err := json.Unmarshal(m.Data, &rec); err != nil {
				return fmt.Errorf("decoding a record of %s: %w", subject, err)
			}
			if rec.Role != decisionlog.RoleShadow || rec.Module != shadowedModule || rec.Version != "v2" || rec.Agree == nil || !*rec.Agree {
				return fmt.Errorf("%s: unexpected record: role %q, module %q, version %q, agree %v, error %q", subject, rec.Role, rec.Module, rec.Version, rec.Agree, rec.Error)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no shadow record on %s within 30s: %w", subject, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// recordCounter counts the records written to BW_DECISIONS: the stream's
// last sequence (records since dropped by the stream's limits still
// count).
type recordCounter struct{ stream jetstream.Stream }

func (c *recordCounter) lastSeq(ctx context.Context) (uint64, error) {
	info, err := c.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", decisionlog.Stream, err)
	}
	return info.State.LastSeq, nil
}

// settle waits (bounded) until the stream stopped growing: the Recorder
// publishes in the background and shadows finish after the outcome.
func (c *recordCounter) settle(ctx context.Context) (uint64, error) {
	last, err := c.lastSeq(ctx)
	for deadline := time.Now().Add(10 * time.Second); err == nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		var now uint64
		if now, err = c.lastSeq(ctx); err == nil && now == last {
			return now, nil
		}
		last = now
	}
	return last, err
}

// counting wraps a run of n messages: each sample gets records_total (the
// records the run wrote, counted once they all landed, outside the
// measured time) and records_per_msg.
func (c *recordCounter) counting(n int, run func(context.Context) (harness.Sample, error)) func(context.Context) (harness.Sample, error) {
	return func(ctx context.Context) (harness.Sample, error) {
		before, err := c.settle(ctx)
		if err != nil {
			return harness.Sample{}, err
		}
		s, err := run(ctx)
		if err != nil {
			return s, err
		}
		after, err := c.settle(ctx)
		if err != nil {
			return s, err
		}
		if s.Extra == nil {
			s.Extra = map[string]float64{}
		}
		s.Extra["records_total"] = float64(after - before)
		s.Extra["records_per_msg"] = float64(after-before) / float64(n)
		return s, nil
	}
}
