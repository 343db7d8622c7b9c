package decisionlog_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/testkit"
)

func ptr[T any](v T) *T { return &v }

func retryIn(id string, status int32) *abi.Input {
	return &abi.Input{Route: "orders", MessageID: id, Attempt: 1, MaxAttempts: 5,
		Error: abi.AttemptError{Attempt: 1, Kind: abi.ErrorStatus, Status: status}}
}

func shadowRec(id, cur, shadow string, curFuel, fuel int64, agree *bool) *decisionlog.Record {
	r := &decisionlog.Record{Route: "orders", Kind: "retry", MessageID: id, Module: "backoff", Version: "v2", Role: decisionlog.RoleShadow,
		Input: retryIn(id, 503), Fuel: fuel, CurrentFuel: curFuel, Agree: agree}
	if cur != "" {
		r.CurrentOutput = json.RawMessage(cur)
	}
	if shadow != "" {
		r.Output = json.RawMessage(shadow)
	}
	return r
}

func TestDiff(t *testing.T) {
	a := `{"retry":true,"delay_ms":100,"reason":"x"}`
	aReordered := `{"reason":"x", "delay_ms":100, "retry":true}`
	b := `{"retry":false,"delay_ms":0}`
	breach := shadowRec("m-breach", a, "", 1000, 5000, ptr(false))
	breach.Breach, breach.Error = "fuel", "out of fuel"
	tests := []struct {
		name              string
		recs              []*decisionlog.Record
		examples          int
		total, agreed     int
		ignored, breaches int
		divergent         int
		exampleIDs        []string
		rate              float64
		fuelDelta, rel    float64
	}{
		{name: "none", recs: nil, examples: 5},
		{name: "only other roles", examples: 5, ignored: 2, recs: []*decisionlog.Record{
			{Role: decisionlog.RoleCurrent, Kind: "retry"}, {Role: decisionlog.RoleCanary, Kind: "retry"}}},
		{name: "all agree (host's verdict)", examples: 5, total: 2, agreed: 2, rate: 1, fuelDelta: 100, rel: 0.1, recs: []*decisionlog.Record{
			shadowRec("m1", a, a, 1000, 1100, ptr(true)), shadowRec("m2", b, b, 1000, 1100, ptr(true))}},
		{name: "no Agree: compared semantically", examples: 5, total: 2, agreed: 1, divergent: 1, rate: 0.5, exampleIDs: []string{"m2"},
			fuelDelta: -500, rel: -0.5, recs: []*decisionlog.Record{
				shadowRec("m1", a, aReordered, 1000, 500, nil), shadowRec("m2", a, b, 1000, 500, nil)}},
		{name: "divergent, breach, examples capped", examples: 2, total: 4, agreed: 1, divergent: 3, breaches: 1, ignored: 1, rate: 0.25,
			exampleIDs: []string{"m2", "m-breach"}, fuelDelta: 1000, rel: 1, recs: []*decisionlog.Record{
				shadowRec("m1", a, a, 1000, 1000, ptr(true)),
				shadowRec("m2", a, b, 1000, 1000, ptr(false)),
				{Role: decisionlog.RoleCurrent, Kind: "retry", Fuel: 1},
				breach,
				shadowRec("m4", b, a, 1000, 1000, ptr(false))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := decisionlog.DiffExamples(tt.recs, tt.examples)
			if rep.Total != tt.total || rep.Agreed != tt.agreed || rep.Ignored != tt.ignored || rep.Breaches != tt.breaches || rep.Divergent != tt.divergent {
				t.Fatalf("report %+v", rep)
			}
			if math.Abs(rep.AgreementRate-tt.rate) > 1e-9 || math.Abs(rep.Fuel.Delta-tt.fuelDelta) > 1e-9 || math.Abs(rep.Fuel.Relative-tt.rel) > 1e-9 {
				t.Fatalf("rate %v fuel %+v", rep.AgreementRate, rep.Fuel)
			}
			if len(rep.Examples) != len(tt.exampleIDs) {
				t.Fatalf("examples %+v, want %v", rep.Examples, tt.exampleIDs)
			}
			for i, id := range tt.exampleIDs {
				ex := rep.Examples[i]
				if ex.MessageID != id || ex.Input == "" || ex.Current == "" || ex.Other == "" {
					t.Fatalf("example %d: %+v, want %s", i, ex, id)
				}
			}
		})
	}
	rep := decisionlog.Diff([]*decisionlog.Record{breach})
	if rep.BreachesByKind["fuel"] != 1 || !strings.Contains(rep.Examples[0].Other, "fuel") || !strings.Contains(rep.Examples[0].Input, "error status 503") {
		t.Fatalf("breach example: %+v", rep)
	}
}

func TestSameDecision(t *testing.T) {
	tests := []struct {
		kind, a, b string
		same, err  bool
	}{
		{"retry", `{"retry":true,"delay_ms":5}`, `{"delay_ms":5,"retry":true}`, true, false},
		{"retry", `{"retry":true,"delay_ms":5}`, `{"retry":true,"delay_ms":6}`, false, false},
		{"fallback", `{"action":"stub"}`, `{"action":"stub","reason":""}`, true, false},
		{"classify", `{"verdict":"success"}`, `{"verdict":"permanent"}`, false, false},
		{"stub", `{"payload":"{}"}`, `{"payload_base64":"e30="}`, true, false},
		{"stub", `{"payload":""}`, `{"payload":"","headers":{}}`, true, false},
		{"retry", `{"retry":true}`, `{"retri":true}`, false, true},
		{"nope", `{}`, `{}`, false, true},
	}
	for _, tt := range tests {
		same, err := decisionlog.SameDecision(tt.kind, json.RawMessage(tt.a), json.RawMessage(tt.b))
		if same != tt.same || (err != nil) != tt.err {
			t.Errorf("%s %s vs %s: %v %v", tt.kind, tt.a, tt.b, same, err)
		}
	}
}

// load loads a module of modules/ as replay does: deterministic.
func load(t *testing.T, eng *engine.Engine, name, version string) *engine.Module {
	t.Helper()
	m, err := eng.Load(context.Background(), engine.LoadSpec{Name: name, Version: version, Wasm: testkit.Module(t, name), Deterministic: true})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// record runs m on in as the runtime would, and records the decision.
func record(t *testing.T, m *engine.Module, role string, in *abi.Input) *decisionlog.Record {
	t.Helper()
	var d abi.RetryDecision
	st, err := m.Run(context.Background(), engine.KindRetry, in, engine.Limits{}, &d)
	if err != nil {
		t.Fatalf("%s: %v", m.Name(), err)
	}
	out, _ := json.Marshal(&d)
	return &decisionlog.Record{At: time.Now().UTC(), Route: in.Route, Kind: "retry", MessageID: in.MessageID, Module: "backoff", Version: m.Version(),
		SHA256: m.SHA256(), Role: role, Input: in, Output: out, Fuel: st.Fuel, WallTimeNs: int64(st.WallTime)}
}

func TestReplay(t *testing.T) {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close(ctx) })
	exp := load(t, eng, "retry-exponential", "v1")
	aware := load(t, eng, "retry-status-aware", "v2")

	// Records made by retry-status-aware: a 404 it does not retry, a 503
	// it does.
	madeByAware := []*decisionlog.Record{
		record(t, aware, decisionlog.RoleCurrent, retryIn("m-404", 404)),
		record(t, aware, decisionlog.RoleCanary, retryIn("m-503", 503)),
	}
	// Records made by retry-exponential, with records Replay must skip.
	shadow := record(t, exp, decisionlog.RoleShadow, retryIn("m-shadow", 503))
	truncated := record(t, exp, decisionlog.RoleCurrent, retryIn("m-cut", 503))
	truncated.Truncated = "input.payload removed"
	noInput := record(t, exp, decisionlog.RoleCurrent, retryIn("m-noinput", 503))
	noInput.Input = nil
	otherKind := record(t, exp, decisionlog.RoleCurrent, retryIn("m-classify", 503))
	otherKind.Kind = "classify"
	madeByExp := []*decisionlog.Record{
		record(t, exp, decisionlog.RoleCurrent, retryIn("m-1", 503)),
		record(t, exp, decisionlog.RoleCurrent, retryIn("m-2", 429)),
		shadow, truncated, noInput, otherKind,
		record(t, exp, decisionlog.RoleCanary, &abi.Input{Route: "orders", MessageID: "m-3", Attempt: 3, MaxAttempts: 5,
			Error: abi.AttemptError{Kind: abi.ErrorTimeout}, Config: []byte(`{"initial_ms":50}`)}),
	}

	tests := []struct {
		name      string
		m         *engine.Module
		recs      []*decisionlog.Record
		compared  int
		agreed    int
		sameAct   int // same action: retry or not, whatever the delay
		skipped   map[string]int
		divergent []string
	}{
		{name: "same module", m: exp, recs: madeByExp, compared: 3, agreed: 3, sameAct: 3, skipped: map[string]int{
			decisionlog.SkipShadow: 1, decisionlog.SkipTruncated: 1, decisionlog.SkipNoInput: 1, "records of kind classify, which the candidate does not export": 1}},
		{name: "same module (status-aware)", m: aware, recs: madeByAware, compared: 2, agreed: 2, sameAct: 2},
		// Both retry the 503, after different delays; only exponential
		// retries the 404.
		{name: "different module", m: exp, recs: madeByAware, compared: 2, agreed: 0, sameAct: 1, divergent: []string{"m-404", "m-503"}},
		{name: "nothing to replay", m: exp, recs: []*decisionlog.Record{shadow}, skipped: map[string]int{decisionlog.SkipShadow: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := decisionlog.Replay(ctx, tt.m, tt.recs)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Compared != tt.compared || rep.Agreed != tt.agreed || rep.ActionAgreed != tt.sameAct || rep.Breaches != 0 || len(rep.Records) != tt.compared {
				t.Fatalf("report %+v", rep)
			}
			if len(rep.Skipped) != len(tt.skipped) {
				t.Fatalf("skipped %v, want %v", rep.Skipped, tt.skipped)
			}
			for k, n := range tt.skipped {
				if rep.Skipped[k] != n {
					t.Fatalf("skipped %v, want %v", rep.Skipped, tt.skipped)
				}
			}
			switch {
			case tt.compared == 0 && rep.AgreementRate != 0:
				t.Fatalf("agreement %v over nothing", rep.AgreementRate)
			case tt.compared > 0 && tt.agreed == tt.compared && rep.AgreementRate != 1:
				t.Fatalf("agreement %v, want 100%%", rep.AgreementRate)
			case tt.agreed < tt.compared && rep.AgreementRate >= 1:
				t.Fatalf("agreement %v, want < 100%%", rep.AgreementRate)
			}
			if len(rep.Examples) != len(tt.divergent) {
				t.Fatalf("examples %+v", rep.Examples)
			}
			for i, id := range tt.divergent {
				if ex := rep.Examples[i]; ex.MessageID != id || ex.Current == ex.Other {
					t.Fatalf("example %d: %+v", i, ex)
				}
			}
			var recorded, cand int64
			for _, r := range rep.Records {
				if r.CandidateFuel <= 0 {
					t.Fatalf("record %s: candidate fuel %d", r.MessageID, r.CandidateFuel)
				}
				recorded += r.RecordedFuel
				cand += r.CandidateFuel
			}
			if recorded != rep.RecordedFuel || cand != rep.CandidateFuel {
				t.Fatalf("fuel sums %d %d, report %+v", recorded, cand, rep)
			}
			if tt.compared > 0 && math.Abs(rep.Fuel.Delta-(float64(cand)-float64(recorded))/float64(tt.compared)) > 1e-6 {
				t.Fatalf("fuel %+v", rep.Fuel)
			}
		})
	}

	// The 404: status-aware does not retry it, exponential does.
	rep, _ := decisionlog.Replay(ctx, exp, madeByAware)
	if ex := rep.Examples[0]; !strings.Contains(ex.Current, `"retry":false`) || !strings.Contains(ex.Other, `"retry":true`) || !strings.Contains(ex.Input, "404") {
		t.Fatalf("404 example: %+v", ex)
	}
}

// TestReplayFuelIsDeterministic: the same input gives the same fuel every
// time, so replaying the same records twice gives identical fuel per
// record; and a deterministic module replaying its own records charges
// exactly the recorded fuel.
func TestReplayFuelIsDeterministic(t *testing.T) {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close(ctx) })
	for _, name := range []string{"retry-exponential", "retry-status-aware"} {
		t.Run(name, func(t *testing.T) {
			m := load(t, eng, name, "v1")
			var recs []*decisionlog.Record
			for i, st := range []int32{500, 503, 429, 404, 408, 503, 502} {
				in := retryIn("m-"+string(rune('a'+i)), st)
				in.Attempt = uint32(1 + i%4)
				recs = append(recs, record(t, m, decisionlog.RoleCurrent, in))
			}
			first, err := decisionlog.Replay(ctx, m, recs)
			if err != nil {
				t.Fatal(err)
			}
			second, err := decisionlog.Replay(ctx, m, recs)
			if err != nil {
				t.Fatal(err)
			}
			if first.Compared != len(recs) || first.AgreementRate != 1 || second.AgreementRate != 1 {
				t.Fatalf("agreement %v / %v over %d", first.AgreementRate, second.AgreementRate, first.Compared)
			}
			for i := range first.Records {
				a, b := first.Records[i], second.Records[i]
				if a.CandidateFuel != b.CandidateFuel {
					t.Fatalf("record %s: fuel %d then %d", a.MessageID, a.CandidateFuel, b.CandidateFuel)
				}
				if a.CandidateFuel != a.RecordedFuel {
					t.Fatalf("record %s: recorded with fuel %d, replayed with %d", a.MessageID, a.RecordedFuel, a.CandidateFuel)
				}
			}
			if first.Fuel.Delta != 0 || first.CandidateFuel != second.CandidateFuel {
				t.Fatalf("fuel %+v vs %+v", first.Fuel, second.Fuel)
			}
		})
	}
}

func TestReplayStopsWithContext(t *testing.T) {
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close(ctx) })
	m := load(t, eng, "retry-exponential", "v1")
	recs := []*decisionlog.Record{record(t, m, decisionlog.RoleCurrent, retryIn("m-1", 503))}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := decisionlog.Replay(cctx, m, recs); err == nil {
		t.Fatal("replay with an ended context succeeded")
	}
}
