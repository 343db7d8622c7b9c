package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/bench/internal/harness"
	"github.com/breakwater-dev/breakwater/bench/internal/peers"
	"github.com/breakwater-dev/breakwater/host/client"
	"github.com/breakwater-dev/breakwater/host/headers"
)

// featureScenarios measure what a route feature costs or saves, each
// against the same route without it, in one Breakwater instance holding
// both routes (one per system) on the env's server and target:
//
//   - classify_every_message: every answer judged by the standard wasm
//     classifier (modules/classify-json-error.wasm) vs the native status
//     rules, async, 256 in flight;
//   - read_through_hit: a read_through cache whose every lookup finds a
//     fresh value (warmed in Setup) vs the same route calling the target
//     (no cache), async, 256 in flight;
//   - read_through_hit_sync: the same two routes on the sync path
//     (bw.call.<route>, one call at a time).
func featureScenarios() []harness.Scenario {
	return []harness.Scenario{
		{
			Name:  "classify_every_message",
			Title: "Classify every answer: wasm classify-json-error vs native status rules, async, 256 in flight",
			// Two warmup rounds, so that a quick run keeps one: the first
			// run fills the engine's instance pool (up to 256 calls at once).
			Rounds: 6, Warmup: 2,
			Setup: classifySetup,
			Ratios: []harness.Ratio{
				{Name: "wasm_vs_native_classify", Num: "wasm-classify", Den: "native-classify", Metric: "ops_per_s", HigherIsBetter: true, Target: 0.9},
			},
		},
		{
			Name:   "read_through_hit",
			Title:  "Read-through cache, every message a fresh hit vs the same route calling the target (no cache), async, 256 in flight",
			Rounds: 6, Warmup: 1,
			Setup: readThroughAsyncSetup,
			Ratios: []harness.Ratio{
				{Name: "read_through_hit_vs_target_call", Num: "read-through-hit", Den: "target-call", Metric: "ops_per_s", HigherIsBetter: true},
			},
		},
		{
			Name:   "read_through_hit_sync",
			Title:  "Read-through cache on the sync path (bw.call, one call at a time), every call a fresh hit vs calling the target",
			Rounds: 6, Warmup: 1,
			Setup: readThroughSyncSetup,
			Ratios: []harness.Ratio{
				{Name: "read_through_hit_vs_target_call_sync", Num: "read-through-hit", Den: "target-call", Metric: "ops_per_s", HigherIsBetter: true},
				{Name: "read_through_hit_vs_target_call_sync_p50", Num: "read-through-hit", Den: "target-call", Metric: "p50"},
			},
		},
	}
}

// featureInFlight is the async feature scenarios' window.
const featureInFlight = 256

// featureMessages is the messages (async) or calls (sync) per run.
func featureMessages(quick bool) int {
	if quick {
		return 2000
	}
	return 6000
}

// moduleDir copies the named built-in modules (modules/<name>.wasm) into
// a directory of the env, for modules.dir.
func (e *env) moduleDir(names ...string) (string, error) {
	dir := filepath.Join(e.dir, "modules")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, name := range names {
		wasm, err := peers.RepoFile(filepath.Join("modules", name+".wasm"))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), wasm, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// expectOutcomes wraps a run: every one of its n messages must have had
// outcome want, so that the scenario measures what it says.
func expectOutcomes(name, want string, n int, run func(context.Context) (harness.Sample, error)) func(context.Context) (harness.Sample, error) {
	return func(ctx context.Context) (harness.Sample, error) {
		s, err := run(ctx)
		if err == nil && s.Extra[want+"_total"] != float64(n) {
			err = fmt.Errorf("%s: %v of %d outcomes %q (outcomes: %v)", name, s.Extra[want+"_total"], n, want, s.Extra)
		}
		return s, err
	}
}

func classifySetup(ctx context.Context, quick bool) ([]harness.System, func(), error) {
	n := featureMessages(quick)
	e, err := newEnv(ctx, nil) // the target answers 200 {"price":1}
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) ([]harness.System, func(), error) { e.close(); return nil, nil, err }
	modDir, err := e.moduleDir("classify-json-error")
	if err != nil {
		return fail(err)
	}
	svc, err := e.startBreakwaterModules(ctx, modDir, fmt.Sprintf(`  - name: wasmclassify
    target:
      http:
        url: %[1]s
    concurrency: %[2]d
    modules:
      classify: {name: classify-json-error, config: {error_field: error}}
  - name: nativeclassify
    target:
      http:
        url: %[1]s
    concurrency: %[2]d
`, e.up.URL, featureInFlight))
	if err != nil {
		return fail(err)
	}
	if err := waitReady(ctx, svc.Ready); err != nil {
		return fail(err)
	}
	var systems []harness.System
	for _, s := range []struct{ name, route string }{{"wasm-classify", "wasmclassify"}, {"native-classify", "nativeclassify"}} {
		sys, _, err := routeSystem(e, e.nc, e.js, s.name, s.route, featureInFlight, n, routeOptions{countOutcomes: true})
		if err != nil {
			return fail(err)
		}
		sys.Run = expectOutcomes(s.name, headers.OutcomeOK, n, sys.Run)
		systems = append(systems, sys)
	}
	return systems, e.close, nil
}

// readThroughKeys is how many distinct cache keys (skus) the read-through
// scenarios cycle through; Setup warms every one.
const readThroughKeys = 64

// readThroughEnv starts an env whose target counts its calls, and one
// Breakwater instance with two routes to it: "rthit" (cache key
// {{.payload.sku}}, read_through, fresh for an hour: no value goes stale
// during the scenario) and "rtcall" (no cache).
func readThroughEnv(ctx context.Context, inFlight int) (*env, *atomic.Int64, error) {
	var calls atomic.Int64
	e, err := newEnv(ctx, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"price":1}`))
	}))
	if err != nil {
		return nil, nil, err
	}
	svc, err := e.startBreakwater(ctx, fmt.Sprintf(`  - name: rthit
    target:
      http:
        url: %[1]s
    concurrency: %[2]d
    cache: {key: '{{.payload.sku}}', mode: read_through, fresh: 1h, stale_if_error: 1h}
  - name: rtcall
    target:
      http:
        url: %[1]s
    concurrency: %[2]d
`, e.up.URL, inFlight))
	if err == nil {
		err = waitReady(ctx, svc.Ready)
	}
	if err != nil {
		e.close()
		return nil, nil, err
	}
	return e, &calls, nil
}

func skuPayload(id string, i int) []byte {
	return []byte(`{"sku":"s` + strconv.Itoa(i%readThroughKeys) + `","id":"` + id + `"}`)
}

// withTargetCalls adds to each sample the target calls made during it
// (Extra target_calls_total).
func withTargetCalls(calls *atomic.Int64, run func(context.Context) (harness.Sample, error)) func(context.Context) (harness.Sample, error) {
	return func(ctx context.Context) (harness.Sample, error) {
		before := calls.Load()
		s, err := run(ctx)
		if s.Extra == nil {
			s.Extra = map[string]float64{}
		}
		s.Extra["target_calls_total"] = float64(calls.Load() - before)
		return s, err
	}
}

func readThroughAsyncSetup(ctx context.Context, quick bool) ([]harness.System, func(), error) {
	n := featureMessages(quick)
	e, calls, err := readThroughEnv(ctx, featureInFlight)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) ([]harness.System, func(), error) { e.close(); return nil, nil, err }
	opt := routeOptions{payload: skuPayload, countOutcomes: true}
	hit, warm, err := routeSystem(e, e.nc, e.js, "read-through-hit", "rthit", featureInFlight, n, opt)
	if err != nil {
		return fail(err)
	}
	// Warm the cache: one message per key, each a miss that stores the
	// target's answer.
	if s, err := warm(ctx, readThroughKeys); err != nil {
		return fail(fmt.Errorf("warming the cache: %w", err))
	} else if s.Extra[headers.OutcomeOK+"_total"] != readThroughKeys {
		return fail(fmt.Errorf("warming the cache: outcomes %v, want %d ok", s.Extra, readThroughKeys))
	}
	hit.Run = withTargetCalls(calls, expectOutcomes(hit.Name, headers.OutcomeCached, n, hit.Run))
	call, _, err := routeSystem(e, e.nc, e.js, "target-call", "rtcall", featureInFlight, n, opt)
	if err != nil {
		return fail(err)
	}
	call.Run = withTargetCalls(calls, expectOutcomes(call.Name, headers.OutcomeOK, n, call.Run))
	return []harness.System{hit, call}, e.close, nil
}

func readThroughSyncSetup(ctx context.Context, quick bool) ([]harness.System, func(), error) {
	n := featureMessages(quick)
	e, calls, err := readThroughEnv(ctx, 16)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) ([]harness.System, func(), error) { e.close(); return nil, nil, err }
	c, err := client.New(e.nc)
	if err != nil {
		return fail(err)
	}
	payloads := make([][]byte, readThroughKeys)
	for i := range payloads {
		payloads[i] = skuPayload("x", i)
	}
	caller := func(route, want string) func(context.Context) error {
		var i int
		return func(ctx context.Context) error {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			res, err := c.Call(cctx, route, payloads[i%readThroughKeys])
			i++
			if err == nil && res.Outcome != want {
				err = fmt.Errorf("%s: outcome %q, want %q (%s)", route, res.Outcome, want, res.Error)
			}
			return err
		}
	}
	// Warm the cache: one call per key, each a miss.
	warm := caller("rthit", headers.OutcomeOK)
	for range readThroughKeys {
		if err := warm(ctx); err != nil {
			return fail(fmt.Errorf("warming the cache: %w", err))
		}
	}
	hit := syncSystem("read-through-hit", caller("rthit", headers.OutcomeCached), nil, n)
	hit.Run = withTargetCalls(calls, hit.Run)
	call := syncSystem("target-call", caller("rtcall", headers.OutcomeOK), nil, n)
	call.Run = withTargetCalls(calls, call.Run)
	return []harness.System{hit, call}, e.close, nil
}
