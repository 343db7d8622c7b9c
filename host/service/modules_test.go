package service_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/headers"
)

func TestModulePolicies(t *testing.T) {
	up := newUpstream(t, func(id string, call int) int {
		if strings.HasPrefix(id, "gone") {
			return 404
		}
		return 503
	})
	mods := moduleDir(t, "retry-status-aware", "stub-template", "infinite_loop")
	e := newEnv(t, mods+"routes:"+
		routeYAML("wasm", up.URL, `    modules:
      retry:
        name: retry-status-aware
        config:
          delay_ms: 5
      stub:
        name: stub-template
        config:
          template:
            status: temporarily unavailable
            price: 0
`)+
		routeYAML("hostile", up.URL, `    modules:
      retry:
        name: infinite_loop
        limits:
          wall_time: 20ms
`))
	e.run()
	e.publish("wasm", "w-1", `{"id":"w-1"}`)
	e.publish("wasm", "gone-1", `{"id":"gone-1"}`)
	e.publish("hostile", "h-1", `{"id":"h-1"}`)

	// Retried by the module (503 is retryable) until max attempts, then the
	// module's stub.
	m := e.outcome("w-1")
	if m.Header.Get(headers.Outcome) != headers.OutcomeStub || m.Header.Get(headers.Attempts) != "3" {
		t.Fatalf("w-1: %v %s", m.Header, m.Data)
	}
	if !strings.Contains(string(m.Data), "temporarily unavailable") {
		t.Errorf("stub payload %s", m.Data)
	}
	// 404: the module says do not retry: one attempt, then the stub.
	if m := e.outcome("gone-1"); m.Header.Get(headers.Attempts) != "1" || m.Header.Get(headers.Outcome) != headers.OutcomeStub {
		t.Fatalf("gone-1: %v", m.Header)
	}
	// Hostile modules: each breach falls back to the native policy (and
	// there is no static stub), so the message still reaches a terminal
	// outcome: a dead letter with the target's errors.
	m = e.outcome("h-1")
	if m.Header.Get(headers.Outcome) != headers.OutcomeDead {
		t.Fatalf("h-1: %v", m.Header)
	}
	if rec, err := deadletter.Unmarshal(m.Data); err != nil || len(rec.Errors) != 3 {
		t.Fatalf("h-1 record: %+v %v", rec, err)
	}
	for _, want := range []string{`"module":"infinite_loop"`} {
		if e.logLine(`"policy module failed; using the native policy"`, want) == "" {
			t.Errorf("no log line for the failing module %s", want)
		}
	}
}

func TestUnknownModuleRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.yaml")
	up := newUpstream(t, always(200))
	yaml := baseYAML(filepath.Join(dir, "js"), "") + moduleDir(t) + "routes:" + routeYAML("r", up.URL, "    modules:\n      retry:\n        name: nosuch\n")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	err := startErr(t, path)
	if err == nil || !strings.Contains(err.Error(), "nosuch") || !strings.Contains(err.Error(), `route "r"`) {
		t.Fatalf("want an error naming the route and the module, got %v", err)
	}
}

func TestMetricsScraped(t *testing.T) {
	up := newUpstream(t, func(id string, call int) int {
		if id == "fail" {
			return 503
		}
		return 200
	})
	e := newEnv(t, moduleDir(t, "retry-status-aware")+"routes:"+routeYAML("metered", up.URL, `    modules:
      retry:
        name: retry-status-aware
        config:
          delay_ms: 1
`))
	e.run()
	e.publish("metered", "ok", `{"id":"ok"}`)
	e.publish("metered", "fail", `{"id":"fail"}`)
	e.outcome("ok")
	e.outcome("fail")
	body := scrape(t, "http://"+e.svc.HTTPAddr()+"/metrics")
	for _, want := range []string{
		`breakwater_outcomes_total{outcome="ok",route="metered"} 1`,
		`breakwater_outcomes_total{outcome="dead",route="metered"} 1`,
		`breakwater_target_attempts_total{result="status",route="metered",target="metered"} 3`,
		`breakwater_target_attempts_total{result="ok",route="metered",target="metered"} 1`,
		`breakwater_retries_total{route="metered"} 2`,
		`breakwater_module_version_info{module="retry-status-aware",version="`,
		`breakwater_module_call_seconds_count{kind="retry",module="retry-status-aware"`,
		`breakwater_module_fuel_used_count{kind="retry",module="retry-status-aware"`,
		`breakwater_target_latency_seconds_bucket{route="metered",target="metered"`,
		`breakwater_in_flight{route="metered"} 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestHostileModulesStillReachAnOutcome: a route whose retry module breaks
// its limits in each way still delivers every message to a terminal
// outcome, by the native policy.
func TestHostileModulesStillReachAnOutcome(t *testing.T) {
	up := newUpstream(t, always(503))
	fixtures := []string{"infinite_loop", "deep_recursion", "memory_bomb", "huge_output", "trap", "bad_output_bounds", "bad_output_encoding"}
	routes := "routes:"
	for _, f := range fixtures {
		routes += routeYAML(strings.ReplaceAll(f, "_", "-"), up.URL, fmt.Sprintf("    modules:\n      retry:\n        name: %s\n        limits:\n          wall_time: 20ms\n          fuel: 5000000\n", f))
	}
	e := newEnv(t, moduleDir(t, fixtures...)+routes)
	e.run()
	for _, f := range fixtures {
		e.publish(strings.ReplaceAll(f, "_", "-"), "m-"+f, `{"id":"x"}`)
	}
	for _, f := range fixtures {
		m := e.outcome("m-" + f)
		if m.Header.Get(headers.Outcome) != headers.OutcomeDead || m.Header.Get(headers.Attempts) != "3" {
			t.Errorf("%s: outcome %v", f, m.Header)
		}
		if e.logLine(`"policy module failed; using the native policy"`, `"module":"`+f+`"`) == "" {
			t.Errorf("%s: the breach was not logged", f)
		}
	}
	// Every breach is counted, decoding failures (bad_output) included.
	body := scrape(t, "http://"+e.svc.HTTPAddr()+"/metrics")
	for _, want := range []string{
		`breakwater_module_breaches_total{breach="bad_output",module="bad_output_encoding"`,
		`breakwater_module_breaches_total{breach="bad_output",module="bad_output_bounds"`,
		`breakwater_module_breaches_total{breach="fuel",module="infinite_loop"`,
		`breakwater_module_breaches_total{breach="trap",module="trap"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
