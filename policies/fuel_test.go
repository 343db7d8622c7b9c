package policies_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/guest-sdk/sdktest"
	"github.com/breakwater-dev/breakwater/host/engine"
)

// fuelCases are one input per standard module. The configs are compact
// JSON: the JSON form of an Input carries config as a JSON value, which
// encoding/json compacts on the way to the runtime, and a guest parsing
// fewer bytes burns less fuel.
var fuelCases = []struct {
	module string
	kind   engine.Kind
	in     abi.Input
}{
	{"retry-constant", engine.KindRetry, abi.Input{Route: "orders", Attempt: 1, Error: statusErr(503)}},
	{"retry-status-aware", engine.KindRetry, abi.Input{Route: "orders", MessageID: "m1", Attempt: 2, MaxAttempts: 5, Error: statusErr(429),
		Config: []byte(`{"delay_ms":50,"throttled_delay_ms":1000}`)}},
	{"retry-exponential", engine.KindRetry, abi.Input{Route: "orders", MessageID: "m1", Attempt: 3, Error: kindErr(abi.ErrorTimeout),
		Config: []byte(`{"initial_ms":50,"max_ms":1000,"multiplier":3}`)}},
	{"fallback-cache-then-stub", engine.KindFallback, abi.Input{Route: "orders", Error: statusErr(503), Config: []byte(`{"has_stub":true}`)}},
	{"stub-template", engine.KindStub, abi.Input{Route: "catalog", Subject: "bw.in.catalog", MessageID: "m-9", Error: statusErr(503),
		Payload: []byte(`{"name": "widget", "id": 7}`),
		Config:  []byte(`{"template":{"status":"unavailable","route":"{{route}}"},"copy":["name","id"]}`)}},
	{"classify-json-error", engine.KindClassify, classifyInput(200, `{"error": "quota exceeded"}`, `{"success_statuses":[409]}`)},
}

func engineOutput(k engine.Kind) engine.Output {
	switch k {
	case engine.KindRetry:
		return new(abi.RetryDecision)
	case engine.KindFallback:
		return new(abi.FallbackDecision)
	case engine.KindStub:
		return new(abi.Stub)
	}
	return new(abi.ClassifyDecision)
}

// TestFuelMatchesEngine checks sdktest's promise: the fuel a call is
// charged under sdktest is what the host's engine charges for the same
// module and input (a deterministic instance, as `runtime module run` and
// replay use), so a module whose tests pass under a route's fuel limit
// does not run out of fuel on those inputs in production. It also checks
// that sdktest reports a fuel breach when the budget is one unit short,
// and passes with exactly the fuel needed.
func TestFuelMatchesEngine(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, engine.Options{})
	for _, tt := range fuelCases {
		t.Run(tt.module, func(t *testing.T) {
			em := engineModule(t, e, tt.module, engine.LoadSpec{Deterministic: true})
			want := engineOutput(tt.kind)
			est, err := em.Run(ctx, tt.kind, &tt.in, engine.Limits{}, want)
			if err != nil {
				t.Fatalf("engine: %v", err)
			}
			if est.Fuel <= 0 || est.Fuel >= engine.DefaultLimits().Fuel {
				t.Fatalf("engine fuel %d: want a metered call within the default budget of %d", est.Fuel, engine.DefaultLimits().Fuel)
			}

			m := load(t, tt.module)
			var got json.RawMessage
			st, err := m.Call(ctx, string(tt.kind), &tt.in, &got)
			if err != nil {
				t.Fatalf("sdktest: %v", err)
			}
			if st.Fuel != est.Fuel {
				t.Errorf("sdktest reports %d fuel, the engine %d", st.Fuel, est.Fuel)
			}
			wantJSON, _ := json.Marshal(want)
			if !jsonEqual(t, got, wantJSON) {
				t.Errorf("sdktest decision %s, engine %s", got, wantJSON)
			}

			short := loadWith(t, tt.module, sdktest.Options{Fuel: est.Fuel - 1})
			_, err = short.Call(ctx, string(tt.kind), &tt.in, &got)
			var be *sdktest.BreachError
			if !errors.As(err, &be) || be.Kind != sdktest.BreachFuel {
				t.Errorf("with %d fuel for a call of %d: err = %v, want a fuel breach", est.Fuel-1, est.Fuel, err)
			}
			exact := loadWith(t, tt.module, sdktest.Options{Fuel: est.Fuel})
			if st, err := exact.Call(ctx, string(tt.kind), &tt.in, &got); err != nil || st.Fuel != est.Fuel {
				t.Errorf("with exactly %d fuel: %+v, %v", est.Fuel, st, err)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
