package binding_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/internal/binding"
)

// TestCanaryShare: over 10,000 message ids the share under P is close to
// P%, for several P, and a message's share never changes.
func TestCanaryShare(t *testing.T) {
	for _, pct := range []int{1, 10, 25, 50, 90} {
		in := 0
		for i := range 10_000 {
			if binding.CanaryShare(fmt.Sprintf("order-%d", i)) < pct {
				in++
			}
		}
		// 4 standard deviations of a binomial share over 10,000 draws.
		tol := 4 * math.Sqrt(float64(pct)*float64(100-pct)/10_000)
		if got := float64(in) / 100; math.Abs(got-float64(pct)) > tol {
			t.Errorf("%d%%: %.2f%% of 10,000 ids (tolerance %.2f points)", pct, got, tol)
		}
	}
	for i := range 100 {
		id := fmt.Sprintf("msg-%d", i)
		if binding.CanaryShare(id) != binding.CanaryShare(id) {
			t.Fatalf("%s moved", id)
		}
	}
}

// TestCanarySplitsDecisions: with a canary at 30%, 10,000 decisions on
// distinct messages split close to 30/70 between the two versions, and
// every retry of one message is decided by the same version; at 100% the
// canary becomes current, at 0% it is withdrawn.
func TestCanarySplitsDecisions(t *testing.T) {
	e := newEnv(t, false)
	for _, m := range []string{"retry-exponential", "retry-status-aware"} {
		if _, err := e.store.Push(e.ctx, "policy", wasmFile(t, m), nil, e.validate, "t"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.Rollback(e.ctx, "policy", 1); err != nil {
		t.Fatal(err)
	}
	bd := e.binder(binding.StoreSource{Store: e.store})
	p, err := bd.Policy(e.ctx, "r", binding.Ref{Name: "policy", Kind: engine.KindRetry})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Promote(e.ctx, "policy", 2, 30, e.validate, "t"); err != nil {
		t.Fatal(err)
	}
	if err := bd.Reload(e.ctx, "policy"); err != nil {
		t.Fatal(err)
	}
	roles := map[string]int{}
	byMessage := map[string]string{}
	in := engine.SampleInput()
	for i := range 10_000 {
		in.MessageID = fmt.Sprintf("m-%d", i%2_500) // 4 decisions (retries) per message
		var d abi.RetryDecision
		sv, err := p.Call(e.ctx, in, &d)
		if err != nil {
			t.Fatal(err)
		}
		roles[sv.Role]++
		v := sv.Role + "@" + sv.Version
		if prev, ok := byMessage[in.MessageID]; ok && prev != v {
			t.Fatalf("%s decided by %s, then by %s", in.MessageID, prev, v)
		}
		byMessage[in.MessageID] = v
		if (sv.Role == decisionlog.RoleCanary) != (sv.Version == "v2") {
			t.Fatalf("role %s for %s", sv.Role, sv.Version)
		}
	}
	if share := float64(roles[decisionlog.RoleCanary]) / 100; share < 26 || share > 34 {
		t.Fatalf("canary at 30%%: %.1f%% of 10,000 decisions (%v)", share, roles)
	}
	t.Logf("30%% canary: %v", roles)

	for _, step := range []struct {
		pct  int
		want string // version deciding every message afterwards
	}{{0, "v1"}, {100, "v2"}} {
		if _, err := e.store.Promote(e.ctx, "policy", 2, step.pct, e.validate, "t"); err != nil {
			t.Fatal(err)
		}
		if err := bd.Reload(e.ctx, "policy"); err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			in.MessageID = fmt.Sprintf("m-%d", i)
			var d abi.RetryDecision
			sv, err := p.Call(e.ctx, in, &d)
			if err != nil || sv.Version != step.want || sv.Role != decisionlog.RoleCurrent {
				t.Fatalf("after promote %d%%: %s@%s, %v", step.pct, sv.Role, sv.Version, err)
			}
		}
	}
}
