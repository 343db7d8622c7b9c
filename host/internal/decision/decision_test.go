package decision_test

import (
	"context"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/internal/decision"
	"github.com/breakwater-dev/breakwater/host/testkit"
)

// bound is a loaded module serving one kind, as host/binding serves it.
type bound struct {
	m    *engine.Module
	kind engine.Kind
}

func (b bound) Call(ctx context.Context, in *abi.Input, out engine.Output) (decision.Served, error) {
	st, err := b.m.Run(ctx, b.kind, in, engine.Limits{}, out)
	return decision.Served{Module: b.m.Name(), Version: b.m.Version(), SHA256: b.m.SHA256(), Role: decisionlog.RoleCurrent, Stats: st}, err
}

func (b bound) HasShadow() bool { return false }

func (b bound) Shadow(context.Context, *abi.Input, engine.Output) (decision.Served, bool, error) {
	return decision.Served{}, false, nil
}
func (b bound) Module() string { return b.m.Name() + "@" + b.m.Version() }

func load(t *testing.T, e *engine.Engine, name string, kind engine.Kind) bound {
	t.Helper()
	m, err := e.Load(context.Background(), engine.LoadSpec{Name: name, Version: "v1", Wasm: testkit.Module(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return bound{m, kind}
}

func TestDecide(t *testing.T) {
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(ctx) })
	classify := load(t, e, "classify-json-error", engine.KindClassify)
	stub := load(t, e, "stub-template", engine.KindStub)
	trap := load(t, e, "trap", engine.KindRetry)

	type failure struct{ kind, module string }
	var failures []failure
	onFailed := func(_ context.Context, route, kind, module string, _ *abi.Input, err error) {
		failures = append(failures, failure{kind, module})
	}
	nativeRetry := func(context.Context, *abi.Input) abi.RetryDecision {
		return abi.RetryDecision{Retry: true, Reason: "native"}
	}

	t.Run("module decides", func(t *testing.T) {
		p := decision.New(decision.Spec[abi.ClassifyDecision]{Kind: decision.Classify, Route: "r", Module: classify, ModuleName: "classify-json-error", OnFailed: onFailed})
		in := &abi.Input{Route: "r", ResponseStatus: 200, ResponseBody: []byte(`{"error":"quota"}`)}
		d, by, ok := p.Decide(ctx, in)
		if !ok || by != "classify-json-error@v1" || d.Verdict != abi.VerdictRetryable {
			t.Fatalf("%+v by %q (%v)", d, by, ok)
		}
		if !p.HasModule() || p.Serving() != "classify-json-error@v1" {
			t.Fatalf("serving %q", p.Serving())
		}
	})
	t.Run("config per call, input untouched", func(t *testing.T) {
		p := decision.New(decision.Spec[abi.Stub]{Kind: decision.Stub, Route: "r", Module: stub, ModuleName: "stub-template",
			Config: []byte(`{"template":{"stub":true}}`), OnFailed: onFailed})
		in := &abi.Input{Route: "r", Payload: []byte(`{}`)}
		s, by, ok := p.Decide(ctx, in)
		if !ok || by != "stub-template@v1" || !strings.Contains(string(s.Payload), `"stub":true`) {
			t.Fatalf("%s by %q (%v)", s.Payload, by, ok)
		}
		if in.Config != nil {
			t.Fatalf("the caller's input was given the module's config: %s", in.Config)
		}
	})
	t.Run("a breach falls back to native", func(t *testing.T) {
		failures = nil
		p := decision.New(decision.Spec[abi.RetryDecision]{Kind: decision.Retry, Route: "r", Native: nativeRetry, Module: trap, ModuleName: "trap", OnFailed: onFailed})
		d, by, ok := p.Decide(ctx, &abi.Input{Route: "r", Attempt: 1, MaxAttempts: 3})
		if !ok || by != "native" || d.Reason != "native" {
			t.Fatalf("%+v by %q (%v)", d, by, ok)
		}
		if len(failures) != 1 || failures[0] != (failure{"retry", "trap"}) {
			t.Fatalf("failures heard: %+v", failures)
		}
	})
	t.Run("an unusable output falls back to native", func(t *testing.T) {
		failures = nil
		// classify-json-error exports bw_classify only: a retry call is a breach.
		wrong := bound{classify.m, engine.KindRetry}
		p := decision.New(decision.Spec[abi.RetryDecision]{Kind: decision.Retry, Route: "r", Native: nativeRetry, Module: wrong, ModuleName: "classify-json-error", OnFailed: onFailed})
		if _, by, ok := p.Decide(ctx, &abi.Input{Route: "r"}); !ok || by != "native" || len(failures) != 1 {
			t.Fatalf("by %q (%v), failures %+v", by, ok, failures)
		}
	})
	t.Run("nothing can decide", func(t *testing.T) {
		var none *decision.Policy[abi.Stub]
		if _, _, ok := none.Decide(ctx, &abi.Input{}); ok || none.Available() || none.Serving() != "native" {
			t.Fatal("a nil policy decided")
		}
		p := decision.New(decision.Spec[abi.ClassifyDecision]{Kind: decision.Classify, Route: "r", Module: bound{trap.m, engine.KindClassify}, OnFailed: onFailed})
		if _, by, ok := p.Decide(ctx, &abi.Input{}); ok || by != "" {
			t.Fatalf("a failed module without a native policy decided: by %q", by)
		}
	})
}

func TestKindChecks(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"unknown fallback action", decision.Fallback.Check(&abi.FallbackDecision{Action: "explode"})},
		{"unknown verdict", decision.Classify.Check(&abi.ClassifyDecision{Verdict: "maybe"})},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if err := decision.Fallback.Check(&abi.FallbackDecision{Action: abi.FallbackStub}); err != nil {
		t.Errorf("stub refused: %v", err)
	}
	if err := decision.Classify.Check(&abi.ClassifyDecision{Verdict: abi.VerdictPermanent}); err != nil {
		t.Errorf("permanent refused: %v", err)
	}
}
