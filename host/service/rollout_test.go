package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/modulestore"
)

// anyModule accepts every module: for pushing versions that fail on
// purpose (the CLI's push refuses them at the dry run).
func anyModule(kinds ...string) modulestore.Validator {
	return func(context.Context, []byte) (modulestore.Info, error) {
		return modulestore.Info{Kinds: kinds, ABIVersion: abi.Version}, nil
	}
}

// policyDir is a modules.dir serving "policy" as module (so routes bind
// before the store has it), with extra config lines for the modules
// section.
func policyDir(t *testing.T, module, extra string) string {
	t.Helper()
	dir := moduleDir(t)
	if err := os.WriteFile(filepath.Join(moduleDirPath(dir), "policy.wasm"), wasmFile(t, module), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir + extra
}

// TestShadowNeverActs: a shadow version decides beside the current one on
// the same inputs; the route acts on the current version's decision alone
// (no retry on a 404), while the shadow's divergent decision (retry) is
// recorded, compared and counted.
func TestShadowNeverActs(t *testing.T) {
	up := newUpstream(t, func(string, int) int { return 404 })
	mods := policyDir(t, "retry-status-aware", "")
	route := routeYAML("shadowed", up.URL, `    modules:
      record: 1
      retry:
        name: policy
        config:
          delay_ms: 1
          initial_ms: 1
          max_ms: 2
`)
	e := newEnv(t, mods+"routes:"+route)
	e.run()
	ctx := context.Background()
	st := adminStore(t, e)
	validate := dryRun(t)
	if _, err := st.Push(ctx, "policy", wasmFile(t, "retry-exponential"), nil, validate, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Push(ctx, "policy", wasmFile(t, "retry-status-aware"), nil, validate, "t"); err != nil {
		t.Fatal(err)
	}
	// v2 (status-aware: a 404 is not retried) is current; v1 (exponential:
	// retries everything) shadows it.
	if _, err := st.SetShadow(ctx, "policy", 1, validate, "t"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the shadow applied", func() bool { return e.logLine(`"module rollout applied"`, `"shadow":"v1"`) != "" })

	// The state lives in JetStream: an instance started now (or
	// restarted) applies it as it binds the route.
	late := startInstance(t, fmt.Sprintf("nats:\n  url: %s\nhttp:\n  listen: \"\"\n%sroutes:%s", e.svc.NATSURL(), mods, route))
	t.Cleanup(late.stop)
	waitUntil(t, "a new instance to apply the shadow", func() bool {
		return grepLines(grepLines(late.logs.String(), `"module rollout applied"`), `"shadow":"v1"`) != ""
	})
	late.stop()

	for i := range 3 {
		e.publish("shadowed", fmt.Sprintf("s-%d", i), fmt.Sprintf(`{"id":"s-%d"}`, i))
	}
	for i := range 3 {
		m := e.outcome(fmt.Sprintf("s-%d", i))
		if m.Header.Get(headers.Attempts) != "1" || m.Header.Get(headers.Outcome) != headers.OutcomeDead {
			t.Fatalf("s-%d: the shadow acted, or the current version did not: %v", i, m.Header)
		}
	}
	if up.totalCalls() != 3 {
		t.Fatalf("the target was called %d times for 3 messages: a retry was acted on", up.totalCalls())
	}

	var shadows, currents []*decisionlog.Record
	waitUntil(t, "the shadow's and the current version's records", func() bool {
		shadows, _, _ = decisionlog.List(ctx, e.js, decisionlog.Filter{Route: "shadowed", Role: decisionlog.RoleShadow})
		currents, _, _ = decisionlog.List(ctx, e.js, decisionlog.Filter{Route: "shadowed", Role: decisionlog.RoleCurrent})
		return len(shadows) >= 3 && len(currents) >= 3
	})
	for _, r := range shadows {
		var sh, cur abi.RetryDecision
		if err := json.Unmarshal(r.Output, &sh); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(r.CurrentOutput, &cur); err != nil {
			t.Fatal(err)
		}
		if r.Agree == nil || *r.Agree || !sh.Retry || cur.Retry || r.Version != "v1" || r.Module != "policy" || r.SHA256 == "" {
			t.Fatalf("shadow record: agree %v, shadow %+v, current %+v, %s@%s", r.Agree, sh, cur, r.Module, r.Version)
		}
		if r.Fuel <= 0 || r.CurrentFuel <= 0 || r.Input == nil || r.Input.Error.Status != 404 || !strings.Contains(string(r.Input.Config), "delay_ms") {
			t.Fatalf("shadow record lacks fuel or input: %+v", r)
		}
	}
	if r := currents[0]; r.Version != "v2" || r.Kind != "retry" || r.MessageID == "" {
		t.Fatalf("current record: %+v", r)
	}
	metrics := scrape(t, "http://"+e.svc.HTTPAddr()+"/metrics")
	if !strings.Contains(metrics, `breakwater_shadow_decisions_total{kind="retry",module="policy",result="diverge",route="shadowed"} 3`) {
		t.Errorf("shadow metric:\n%s", grepLines(metrics, "breakwater_shadow"))
	}

	// Bad input: a shadow whose kinds differ from the current version's,
	// and one that does not exist; the rollout is left as it was.
	if _, err := st.Push(ctx, "policy", wasmFile(t, "classify-json-error"), nil, validate, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Rollback(ctx, "policy", 2); err != nil {
		t.Fatal(err)
	}
	before, _ := st.RolloutOf(ctx, "policy")
	for _, v := range []int{3, 9} {
		if _, err := st.SetShadow(ctx, "policy", v, validate, "t"); err == nil {
			t.Fatalf("shadow v%d accepted", v)
		} else {
			t.Logf("shadow v%d: %v", v, err)
		}
	}
	if after, _ := st.RolloutOf(ctx, "policy"); after.Generation != before.Generation || after.Shadow != 1 {
		t.Fatalf("a refused shadow changed the rollout: %+v -> %+v", before, after)
	}
}

// TestCanaryRollbackOnTwoInstances: a canary that breaches is withdrawn
// automatically, and every instance stops using it; the withdrawal is
// stored for `module show`, logged and counted.
func TestCanaryRollbackOnTwoInstances(t *testing.T) {
	up := newUpstream(t, func(string, int) int { return 503 })
	mods := policyDir(t, "retry-exponential", "  canary:\n    window: 30s\n    margin: 0.2\n    min_calls: 4\n")
	route := routeYAML("canaried", up.URL, `    modules:
      retry:
        name: policy
        config:
          initial_ms: 1
          max_ms: 2
`)
	e := newEnv(t, mods+"routes:"+route)
	e.run()
	two := startInstance(t, fmt.Sprintf("nats:\n  url: %s\nhttp:\n  listen: \"\"\n%sroutes:%s", e.svc.NATSURL(), mods, route))
	t.Cleanup(two.stop)

	ctx := context.Background()
	st := adminStore(t, e)
	// v1 traps on every call; v2 (exponential) is current.
	if _, err := st.Push(ctx, "policy", wasmFile(t, "trap"), nil, anyModule("retry"), "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Push(ctx, "policy", wasmFile(t, "retry-exponential"), nil, dryRun(t), "t"); err != nil {
		t.Fatal(err)
	}
	// Bad input first: nothing changes.
	for _, tc := range []struct{ v, pct int }{{1, 101}, {1, -1}, {7, 50}} {
		if _, err := st.Promote(ctx, "policy", tc.v, tc.pct, anyModule("retry"), "t"); err == nil {
			t.Fatalf("promote v%d %d%% accepted", tc.v, tc.pct)
		}
	}
	if _, err := st.Promote(ctx, "policy", 1, 50, dryRun(t), "t"); err == nil {
		t.Fatal("a canary failing its dry run was accepted")
	}
	if r, _ := st.RolloutOf(ctx, "policy"); r.Generation != 0 {
		t.Fatalf("refused promotions changed the rollout: %+v", r)
	}
	if _, err := st.Promote(ctx, "policy", 1, 50, anyModule("retry"), "ops"); err != nil {
		t.Fatal(err)
	}
	for _, logs := range []func() string{e.logs.String, two.logs.String} {
		waitUntilWithin(t, time.Second, "the canary applied on both instances", func() bool {
			return grepLines(grepLines(logs(), `"module rollout applied"`), `"canary":"v1"`) != ""
		})
	}

	for i := range 40 {
		e.publish("canaried", fmt.Sprintf("c-%d", i), fmt.Sprintf(`{"id":"c-%d"}`, i))
	}
	var state modulestore.RolloutState
	waitUntil(t, "the canary withdrawn", func() bool {
		state, _ = st.RolloutOf(ctx, "policy")
		return state.Withdrawn != nil
	})
	if v, _ := state.ActiveCanary(); v != 0 || state.Withdrawn.Canary != 1 || !strings.Contains(state.Withdrawn.Reason, "rate") {
		t.Fatalf("withdrawal: %+v", state.Withdrawn)
	}
	t.Logf("withdrawn by %s: %s", state.Withdrawn.Instance, state.Withdrawn.Reason)
	for _, logs := range []func() string{e.logs.String, two.logs.String} {
		waitUntilWithin(t, time.Second, "both instances to drop the canary", func() bool {
			return grepLines(grepLines(logs(), `"module rollout applied"`), `"withdrawn":"v1"`) != ""
		})
	}
	if e.logLine(`"canary rolled back automatically"`) == "" && grepLines(two.logs.String(), `"canary rolled back automatically"`) == "" {
		t.Error("no instance logged the rollback")
	}
	for i := range 40 {
		e.outcome(fmt.Sprintf("c-%d", i))
	}

	// From now on no decision goes to v1: no new breach on either instance.
	breaches := func() int {
		return strings.Count(e.logs.String(), "trap breach") + strings.Count(two.logs.String(), "trap breach")
	}
	before := breaches()
	for i := range 20 {
		e.publish("canaried", fmt.Sprintf("after-%d", i), fmt.Sprintf(`{"id":"after-%d"}`, i))
	}
	for i := range 20 {
		e.outcome(fmt.Sprintf("after-%d", i))
	}
	if after := breaches(); after != before {
		t.Fatalf("the withdrawn canary still decided: %d new breaches", after-before)
	}
	metrics := scrape(t, "http://"+e.svc.HTTPAddr()+"/metrics")
	if !strings.Contains(metrics, "breakwater_canary_rollbacks_total") && grepLines(two.logs.String(), "canary rolled back automatically") == "" {
		t.Errorf("no rollback counted:\n%s", grepLines(metrics, "canary"))
	}
}
