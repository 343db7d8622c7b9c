package harness

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fake returns a system that appends its name to *calls and returns a
// fixed sample.
func fake(name string, calls *[]string, s Sample) System {
	return System{Name: name, Run: func(context.Context) (Sample, error) {
		*calls = append(*calls, name)
		return s, nil
	}}
}

func ms(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

func fakeScenario(calls *[]string, rounds, warmup int) Scenario {
	return Scenario{
		Name: "fake", Title: "Fake <scenario> & co", Rounds: rounds, Warmup: warmup, CDF: true,
		Setup: func(ctx context.Context, quick bool) ([]System, func(), error) {
			return []System{
				fake("A", calls, Sample{Latencies: ms(1, 2, 3, 4), Ops: 100, Elapsed: time.Second, Extra: map[string]float64{"lost_total": 1, "rss": 10}}),
				fake("B", calls, Sample{Latencies: ms(2, 4, 6, 8), Ops: 50, Elapsed: time.Second, Extra: map[string]float64{"lost_total": 0, "rss": 20}}),
				fake("C", calls, Sample{Latencies: ms(10), Ops: 10, Elapsed: time.Second, AllocsMeasured: true}),
			}, func() { *calls = append(*calls, "cleanup") }, nil
		},
		Ratios: []Ratio{
			{Name: "a_vs_b_ops", Num: "A", Den: "B", Metric: "ops_per_s", HigherIsBetter: true, Guard: true, Target: 1.5},
			{Name: "a_vs_b_p50", Num: "A", Den: "B", Metric: "p50", Guard: true, Target: 0.4},
			{Name: "a_vs_b_rss", Num: "A", Den: "B", Metric: "rss"},
		},
	}
}

func TestPlan(t *testing.T) {
	s := Scenario{Rounds: 9, Warmup: 2}
	if r, w := s.Plan(false); r != 9 || w != 2 {
		t.Errorf("full: %d, %d", r, w)
	}
	if r, w := s.Plan(true); r != 3 || w != 1 {
		t.Errorf("quick: %d, %d", r, w)
	}
	s = Scenario{Rounds: 2, Warmup: 0}
	if r, w := s.Plan(true); r != 1 || w != 0 {
		t.Errorf("quick small: %d, %d", r, w)
	}
}

func TestOrder(t *testing.T) {
	want := [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 1, 2}}
	for r, w := range want {
		if got := Order(r, 3); !reflect.DeepEqual(got, w) {
			t.Errorf("round %d: %v, want %v", r, got, w)
		}
	}
	if got := Order(5, 0); len(got) != 0 {
		t.Errorf("no system: %v", got)
	}
}

func TestInterleaving(t *testing.T) {
	var calls []string
	res := RunScenario(context.Background(), fakeScenario(&calls, 3, 1), Options{})
	want := []string{
		"A", "B", "C", // warmup round, discarded
		"A", "B", "C", "B", "C", "A", "C", "A", "B",
		"cleanup",
	}
	if !reflect.DeepEqual(calls, want) {
		t.Fatalf("calls %v\nwant  %v", calls, want)
	}
	if len(res.Errors) != 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	for _, s := range res.Systems {
		if s.Runs != 3 {
			t.Errorf("%s: %d runs, want 3 (warmup discarded)", s.Name, s.Runs)
		}
	}
	if res.Rounds != 3 || res.Warmup != 1 {
		t.Errorf("rounds %d warmup %d", res.Rounds, res.Warmup)
	}
}

func TestPercentile(t *testing.T) {
	var v []time.Duration
	for i := 1; i <= 100; i++ {
		v = append(v, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0.1, 1}, {99.5, 100}} {
		if got := Percentile(v, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile(ms(1, 2, 3, 4), 50); got != 2*time.Millisecond {
		t.Errorf("p50 of 4 = %v", got)
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize("A", []Sample{
		{Latencies: ms(4, 1), Ops: 10, Elapsed: time.Second, Extra: map[string]float64{"lost_total": 2, "rss": 10}},
		{Latencies: ms(3, 2), Ops: 30, Elapsed: time.Second, Extra: map[string]float64{"lost_total": 3, "rss": 30}, AllocsPerOp: 4, BytesPerOp: 64},
	})
	if s.Runs != 2 || s.Ops != 40 || s.OpsPerS != 20 {
		t.Errorf("runs %d ops %d ops/s %v", s.Runs, s.Ops, s.OpsPerS)
	}
	if s.P50US != 2000 || s.P99US != 4000 || s.MinUS != 1000 || s.MaxUS != 4000 || s.MeanUS != 2500 {
		t.Errorf("latencies %+v", s)
	}
	if s.Extra["lost_total"] != 5 || s.Extra["rss"] != 20 {
		t.Errorf("extra %v", s.Extra)
	}
	if !s.AllocsMeasured || s.AllocsPerOp != 4 || s.BytesPerOp != 64 {
		t.Errorf("allocs %v %v %v", s.AllocsMeasured, s.AllocsPerOp, s.BytesPerOp)
	}
	if z := Summarize("Z", []Sample{{Ops: 1, Elapsed: time.Second}}); z.AllocsMeasured {
		t.Error("allocs measured without measurement")
	}
}

func TestRatios(t *testing.T) {
	var calls []string
	res := RunScenario(context.Background(), fakeScenario(&calls, 2, 0), Options{})
	got := map[string]RatioResult{}
	for _, r := range res.Ratios {
		got[r.Name] = r
	}
	if r := got["a_vs_b_ops"]; r.Value != 2 || !r.TargetMet || r.Undefined {
		t.Errorf("ops ratio %+v", r)
	}
	if r := got["a_vs_b_p50"]; r.Value != 0.5 || r.TargetMet {
		t.Errorf("p50 ratio %+v (0.5 ≤ 0.4 is not met)", r)
	}
	if r := got["a_vs_b_rss"]; r.Value != 0.5 {
		t.Errorf("extra ratio %+v", r)
	}

	// A ratio naming an unknown system or figure is an error; a zero
	// denominator is only undefined.
	rs, errs := ComputeRatios([]Ratio{
		{Name: "x", Num: "A", Den: "nope", Metric: "ops_per_s"},
		{Name: "y", Num: "A", Den: "B", Metric: "nope"},
		{Name: "z", Num: "A", Den: "B", Metric: "zero"},
	}, []SystemResult{
		{Name: "A", Runs: 1, OpsPerS: 1, Extra: map[string]float64{"zero": 1}},
		{Name: "B", Runs: 1, OpsPerS: 0, Extra: map[string]float64{"zero": 0}},
	})
	if len(errs) != 2 || !rs[0].Undefined || !rs[1].Undefined || !rs[2].Undefined {
		t.Errorf("errs %v ratios %+v", errs, rs)
	}
}

func TestErrors(t *testing.T) {
	var calls []string
	boom := errors.New("boom")
	s := fakeScenario(&calls, 3, 0)
	setup := s.Setup
	s.Setup = func(ctx context.Context, quick bool) ([]System, func(), error) {
		sys, cleanup, err := setup(ctx, quick)
		sys[1].Run = func(context.Context) (Sample, error) { return Sample{}, boom }
		return sys, cleanup, err
	}
	res := RunScenario(context.Background(), s, Options{})
	if len(res.Errors) != 1 || res.Errors[0].System != "B" || res.Errors[0].Error != "boom" {
		t.Fatalf("errors %+v", res.Errors)
	}
	if calls[len(calls)-1] != "cleanup" {
		t.Errorf("no cleanup after a failed run: %v", calls)
	}

	panicky := Scenario{Name: "p", Rounds: 1, Setup: func(context.Context, bool) ([]System, func(), error) { panic("oops") }}
	failing := Scenario{Name: "f", Rounds: 1, Setup: func(context.Context, bool) ([]System, func(), error) { return nil, nil, boom }}
	calls = nil
	all := RunAll(context.Background(), []Scenario{panicky, failing, fakeScenario(&calls, 1, 0)}, Options{Progress: io.Discard})
	if len(all) != 3 || len(all[0].Errors) != 1 || all[0].Errors[0].Phase != "setup" || len(all[1].Errors) != 1 || len(all[2].Errors) != 0 {
		t.Fatalf("RunAll %+v", all)
	}
	r := &Results{Scenarios: all}
	if !r.Failed() {
		t.Error("Failed() = false")
	}
	var buf bytes.Buffer
	if n := PrintErrors(&buf, r); n != 2 || !strings.Contains(buf.String(), "f, setup: boom") {
		t.Errorf("PrintErrors %d %q", n, buf.String())
	}

	if err := Validate([]Scenario{{Name: "a b"}, {Name: "x", Setup: failing.Setup}, {Name: "x", Setup: failing.Setup}}); err == nil ||
		!strings.Contains(err.Error(), "file-name safe") || !strings.Contains(err.Error(), "duplicate") || !strings.Contains(err.Error(), "no Setup") {
		t.Errorf("Validate: %v", err)
	}
}

func results(values map[string]float64, higher bool) *Results {
	var rs []RatioResult
	for name, v := range values {
		rs = append(rs, RatioResult{Name: name, Value: v, HigherIsBetter: higher, Guard: true})
	}
	return &Results{Scenarios: []ScenarioResult{{Name: "s", Ratios: rs}}}
}

func TestCompare(t *testing.T) {
	base := results(map[string]float64{"r": 1.0}, true)
	for _, c := range []struct {
		now    float64
		higher bool
		regr   bool
	}{
		{0.90, true, false}, {0.86, true, false}, {0.84, true, true}, {1.5, true, false},
		{1.10, false, false}, {1.14, false, false}, {1.16, false, true}, {0.5, false, false},
	} {
		base.Scenarios[0].Ratios[0].HigherIsBetter = c.higher
		cs, n := Compare(base, results(map[string]float64{"r": c.now}, c.higher), 0.15)
		if (n == 1) != c.regr || len(cs) != 1 || cs[0].Regression() != c.regr {
			t.Errorf("now %v higher %v: %d regressions %+v", c.now, c.higher, n, cs)
		}
		if math.Abs(cs[0].Change-(c.now-1)) > 1e-9 {
			t.Errorf("change %v", cs[0].Change)
		}
	}

	// Missing on either side, unguarded or undefined: reported, not failed.
	base = results(map[string]float64{"gone": 1, "both": 1, "undef": 1}, true)
	now := results(map[string]float64{"new": 1, "both": 0.1, "undef": 0}, true)
	for i := range now.Scenarios[0].Ratios {
		r := &now.Scenarios[0].Ratios[i]
		switch r.Name {
		case "both":
			r.Guard = false
		case "undef":
			r.Undefined = true
		}
	}
	cs, n := Compare(base, now, 0.15)
	status := map[string]string{}
	for _, c := range cs {
		status[c.Ratio] = c.Status
	}
	want := map[string]string{"gone": StatusMissingNow, "new": StatusMissingBase, "undef": StatusUndefined}
	if n != 0 || !reflect.DeepEqual(status, want) {
		t.Errorf("%d regressions, statuses %v, want %v", n, status, want)
	}
	var buf bytes.Buffer
	PrintComparisons(&buf, "base.json", base, now, cs, n, 0.15)
	if !strings.Contains(buf.String(), "no regression") {
		t.Errorf("output %q", buf.String())
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var calls []string
	res := RunScenario(context.Background(), fakeScenario(&calls, 2, 0), Options{Quick: true})
	r := &Results{Machine: DescribeMachine(""), Quick: true, Scenarios: []ScenarioResult{res}}
	path := filepath.Join(t.TempDir(), "latest.json")
	if err := WriteJSON(path, r); err != nil {
		t.Fatal(err)
	}
	back, err := LoadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.Scenarios[0].Systems {
		r.Scenarios[0].Systems[i].Latencies = nil // not written
	}
	if !reflect.DeepEqual(r, back) {
		t.Errorf("round trip:\n%+v\n%+v", r, back)
	}
	b, _ := os.ReadFile(path)
	for _, key := range []string{`"p50_us"`, `"ops_per_s"`, `"allocs_per_op"`, `"target_met"`, `"higher_is_better"`, `"cores"`, `"commit"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("no %s in the JSON", key)
		}
	}
	if r.Machine.Cores < 1 || r.Machine.GoVersion == "" || r.Machine.Date == "" {
		t.Errorf("machine %+v", r.Machine)
	}
}

func wellFormed(t *testing.T, name string, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var root bool
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		if se, ok := tok.(xml.StartElement); ok && !root {
			root = true
			if se.Name.Local != "svg" {
				t.Fatalf("%s: root element %s", name, se.Name.Local)
			}
		}
	}
	if !root {
		t.Fatalf("%s: empty", name)
	}
}

func TestSVG(t *testing.T) {
	var calls []string
	res := RunScenario(context.Background(), fakeScenario(&calls, 2, 0), Options{})
	dir := t.TempDir()
	// A throughput-only scenario and a failed one (no chart) besides.
	thr := ScenarioResult{Name: "thr", Title: "Throughput", Systems: []SystemResult{{Name: "X", Runs: 1, OpsPerS: 1234}, {Name: "Y", Runs: 1, OpsPerS: 99}}}
	failed := ScenarioResult{Name: "failed", Errors: []RunError{{Phase: "setup", Error: "x"}}}
	paths, err := WriteCharts(dir, &Results{Scenarios: []ScenarioResult{res, thr, failed}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fake.svg", "fake_cdf.svg", "thr.svg"}
	if len(paths) != len(want) {
		t.Fatalf("paths %v", paths)
	}
	for i, p := range paths {
		if filepath.Base(p) != want[i] {
			t.Errorf("path %s, want %s", p, want[i])
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		wellFormed(t, p, b)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "fake.svg"))
	for _, s := range []string{"Fake &lt;scenario&gt; &amp; co", "p50 2.00ms", "p99 4.00ms", ">10ms<", ">latency<"} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("bar chart lacks %q", s)
		}
	}
	b, _ = os.ReadFile(filepath.Join(dir, "thr.svg"))
	if !bytes.Contains(b, []byte("1.23k ops/s")) {
		t.Errorf("throughput chart lacks its label")
	}
	// Figures spanning more than two decades: log scale.
	wide := ScenarioResult{Name: "wide", Title: strings.Repeat("a very long title ", 12), Systems: []SystemResult{
		{Name: "fast", Runs: 1, LatencyCount: 1, P50US: 0.1, P99US: 0.2},
		{Name: "slow", Runs: 1, LatencyCount: 1, P50US: 100, P99US: 300},
	}}
	b = BarChart(wide)
	wellFormed(t, "wide", b)
	for _, s := range []string{"latency (log scale)", ">100ns<", ">1µs<", ">1ms<"} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("log-scale chart lacks %q", s)
		}
	}
	if lines := wrap(wide.Title, 80); len(lines) != 3 || len([]rune(lines[0])) > 80 {
		t.Errorf("wrap: %q", lines)
	}

	// Many latencies: the CDF is sampled.
	var many []time.Duration
	for i := range 100000 {
		many = append(many, time.Duration(i+1)*time.Microsecond)
	}
	big := ScenarioResult{Name: "big", Systems: []SystemResult{{Name: "X", Runs: 1, LatencyCount: len(many), Latencies: many}}}
	wellFormed(t, "big_cdf", CDFChart(big))
	if pts := cdfPoints(many); len(pts) > 1200 || pts[len(pts)-1].d != many[len(many)-1] {
		t.Errorf("%d points, last %v", len(pts), pts[len(pts)-1])
	}
}

func TestTable(t *testing.T) {
	var calls []string
	res := RunScenario(context.Background(), fakeScenario(&calls, 2, 0), Options{})
	var buf bytes.Buffer
	PrintTable(&buf, &Results{Machine: Machine{CPU: "cpu", Cores: 2}, Scenarios: []ScenarioResult{res}})
	out := buf.String()
	for _, s := range []string{"p50", "2.00ms", "100", "lost_total=2", "met", "NOT met", "a_vs_b_ops"} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850: "850ns", 1500: "1.50µs", 123400: "123µs", 12345678: "12.3ms", 2 * time.Second: "2.00s", 0: "0",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%d) = %q, want %q", d, got, want)
		}
	}
	if got := humanRate(12345); got != "12.3k" {
		t.Errorf("humanRate = %q", got)
	}
	ticks, m := niceTicks(4300)
	if m != 5000 || len(ticks) != 6 {
		t.Errorf("niceTicks(4300) = %v, %v", ticks, m)
	}
}

func TestFindRepoRoot(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "bench", "internal")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.work"), []byte("go 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{dir, sub} {
		got, err := FindRepoRoot(from)
		if err != nil || got != dir {
			t.Errorf("from %s: %s, %v", from, got, err)
		}
	}
}
