package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/modulestore"
	"github.com/breakwater-dev/breakwater/host/testkit"
)

// cliNATSURL reads nats.url from a CLI config written by startService.
func cliNATSURL(t *testing.T, cli string) string {
	t.Helper()
	b, err := os.ReadFile(cli)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "url: "); ok {
			return u
		}
	}
	t.Fatalf("no nats.url in %s", cli)
	return ""
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cliStep is a command and what it must print or fail with.
type cliStep struct {
	args []string
	want []string // fragments of stdout+stderr, or of the error when fail
	fail bool
}

func runSteps(t *testing.T, cli string, steps []cliStep) {
	t.Helper()
	for _, s := range steps {
		out, err := runCLI(t, append(s.args, "--config", cli)...)
		all := out
		if err != nil {
			all += "\nerror: " + err.Error()
		}
		t.Logf("%v:\n%s", s.args, all)
		if s.fail != (err != nil) {
			t.Fatalf("%v: error %v, want failure %v:\n%s", s.args, err, s.fail, all)
		}
		for _, w := range s.want {
			if !strings.Contains(all, w) {
				t.Fatalf("%v: output lacks %q:\n%s", s.args, w, all)
			}
		}
	}
}

// TestRolloutCommands: shadow and promote change the rollout, show prints
// it (and a canary withdrawn automatically); bad input is refused with a
// clear error and the rollout unchanged.
func TestRolloutCommands(t *testing.T) {
	var no atomic.Bool
	up := upstream(t, &no)
	cli := startService(t, fmt.Sprintf(`
  - name: orders
    target: {http: {url: %s}}`, up.URL), "")
	ctx := context.Background()
	_, js := testkit.Connect(t, cliNATSURL(t, cli))
	st, err := modulestore.Open(ctx, js, modulestore.Options{})
	if err != nil {
		t.Fatal(err)
	}

	stubCfg := `{"template":{"status":"pending"}}`
	runSteps(t, cli, []cliStep{
		{args: []string{"module", "push", moduleFile("retry-exponential.wasm"), "--name", "backoff"}, want: []string{"pushed backoff v1"}},
		{args: []string{"module", "push", moduleFile("classify-json-error.wasm"), "--name", "backoff"}, want: []string{"pushed backoff v2"}},
		{args: []string{"module", "push", moduleFile("retry-status-aware.wasm"), "--name", "backoff"}, want: []string{"pushed backoff v3"}},
		{args: []string{"module", "push", moduleFile("retry-status-aware.wasm"), "--name", "backoff"}, want: []string{"pushed backoff v4"}},
		{args: []string{"module", "rollback", "backoff", "--to", "v1"}, want: []string{"v1 is current"}},
		{args: []string{"module", "push", moduleFile("stub-template.wasm"), "--name", "stubby", "--module-config", stubCfg}, want: []string{"pushed stubby v1"}},
		{args: []string{"module", "push", moduleFile("stub-template.wasm"), "--name", "stubby", "--module-config", stubCfg}, want: []string{"pushed stubby v2"}},
		{args: []string{"module", "rollback", "stubby", "--to", "1"}, want: []string{"v1 is current"}},
		{args: []string{"module", "show", "backoff"}, want: []string{"* v1", "rollout: none"}},
		// The happy path.
		{args: []string{"module", "shadow", "backoff", "v3"}, want: []string{"backoff: v3 is the shadow now", "runtime module diff backoff"}},
		{args: []string{"module", "show", "backoff"}, want: []string{"* v1", "v3", "[shadow]", "rollout: shadow v3, canary none; generation 1, updated "}},
	})

	before, err := st.RolloutOf(ctx, "backoff")
	if err != nil || before.Shadow != 3 || before.Generation != 1 || before.UpdatedAt.IsZero() {
		t.Fatalf("rollout after shadow: %+v %v", before, err)
	}
	// Bad input: a clear error, nothing changed.
	bad := []cliStep{
		{args: []string{"module", "promote", "backoff", "v9", "--percent", "10"}, want: []string{"no version v9", "unchanged"}, fail: true},
		{args: []string{"module", "promote", "backoff", "v3", "--percent", "101"}, want: []string{"--percent 101", "0-100"}, fail: true},
		{args: []string{"module", "promote", "backoff", "v3", "--percent=-1"}, want: []string{"--percent -1", "0-100"}, fail: true},
		{args: []string{"module", "promote", "backoff", "v3"}, want: []string{"--percent is required"}, fail: true},
		{args: []string{"module", "promote", "backoff", "vx", "--percent", "10"}, want: []string{"v<N> or <N>"}, fail: true},
		{args: []string{"module", "promote", "backoff", "v1", "--percent", "10"}, want: []string{"current version already"}, fail: true},
		{args: []string{"module", "promote", "nosuch", "v1", "--percent", "10"}, want: []string{`"nosuch"`}, fail: true},
		{args: []string{"module", "shadow", "backoff", "v2"}, want: []string{"implements classify", "same kinds", "unchanged"}, fail: true},
		{args: []string{"module", "shadow", "backoff", "v9"}, want: []string{"no version v9"}, fail: true},
		{args: []string{"module", "shadow", "backoff", "v1"}, want: []string{"current version"}, fail: true},
		{args: []string{"module", "shadow", "backoff"}, want: []string{"no version", "--off"}, fail: true},
		{args: []string{"module", "shadow", "backoff", "v3", "--off"}, want: []string{"give no version"}, fail: true},
		{args: []string{"module", "shadow", "nosuch", "v1"}, want: []string{`"nosuch"`}, fail: true},
		{args: []string{"module", "shadow", "backoff", "v4", "--module-config", "{nope"}, want: []string{"--module-config", "JSON object"}, fail: true},
	}
	runSteps(t, cli, bad)
	after, err := st.RolloutOf(ctx, "backoff")
	if err != nil || after != before {
		t.Fatalf("rollout changed by refused commands: %+v, was %+v (%v)", after, before, err)
	}
	if cur, _ := st.Current(ctx, "backoff"); cur != 1 {
		t.Fatalf("current v%d, want v1", cur)
	}

	// A failing dry run: stub-template needs its config.
	runSteps(t, cli, []cliStep{
		{args: []string{"module", "shadow", "stubby", "v2"}, want: []string{"failed the dry run", "dry_run", "--module-config", "unchanged"}, fail: true},
		{args: []string{"module", "promote", "stubby", "v2", "--percent", "5"}, want: []string{"failed the dry run", "dry_run", "--module-config", "unchanged"}, fail: true},
	})
	if r, err := st.RolloutOf(ctx, "stubby"); err != nil || r.Generation != 0 {
		t.Fatalf("stubby's rollout changed: %+v %v", r, err)
	}
	runSteps(t, cli, []cliStep{
		{args: []string{"module", "shadow", "stubby", "v2", "--module-config", stubCfg}, want: []string{"stubby: v2 is the shadow now"}},
		{args: []string{"module", "shadow", "stubby", "--off"}, want: []string{"stubby: shadow stopped"}},
		// Canary, JSON, withdrawal.
		{args: []string{"module", "promote", "backoff", "v4", "--percent", "10"}, want: []string{"backoff: v4 is the canary, deciding 10% of messages"}},
		{args: []string{"module", "show", "backoff"}, want: []string{"[shadow]", "[canary 10%]", "rollout: shadow v3, canary v4 at 10%; generation 2"}},
		{args: []string{"module", "promote", "backoff", "v3", "--percent", "0"}, want: []string{"v3 is not the canary (v4 is)"}, fail: true},
	})
	out, err := runCLI(t, "module", "show", "backoff", "-o", "json", "--config", cli)
	if err != nil {
		t.Fatal(err)
	}
	var v showView
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Name != "backoff" || len(v.Versions) != 4 || v.Rollout.Shadow != 3 || v.Rollout.Canary != 4 ||
		v.Rollout.Percent != 10 || v.Active == nil || v.Active.Version != 4 || v.Rollout.UpdatedBy != operator() {
		t.Fatalf("show -o json: %v %+v\n%s", err, v, out)
	}

	r, _ := st.RolloutOf(ctx, "backoff")
	if err := st.Withdraw(ctx, "backoff", r.Generation, 4, "canary breached 3 times in 10 calls (current 0)", "instance-7"); err != nil {
		t.Fatal(err)
	}
	runSteps(t, cli, []cliStep{
		{args: []string{"module", "show", "backoff"}, want: []string{"canary none", "canary v4 was rolled back automatically", "instance-7", "canary breached 3 times"}},
		{args: []string{"module", "show", "backoff", "-o", "json"}, want: []string{`"withdrawn": {`, `"reason": "canary breached 3 times`, `"instance": "instance-7"`}},
		{args: []string{"module", "promote", "backoff", "v4", "--percent", "0"}, want: []string{"canary withdrawn"}},
		{args: []string{"module", "promote", "backoff", "v3", "--percent", "100"}, want: []string{"backoff: v3 is current now"}},
		{args: []string{"module", "show", "backoff"}, want: []string{"* v3", "rollout: shadow none, canary none; generation 4"}},
	})
	if cur, _ := st.Current(ctx, "backoff"); cur != 3 {
		t.Fatalf("current v%d after promote 100, want v3", cur)
	}
}

// decide runs a deterministic module on in, as recorded decisions are
// made, and returns the record.
func decide(t *testing.T, m *engine.Module, version, role string, in *abi.Input) *decisionlog.Record {
	t.Helper()
	var d abi.RetryDecision
	st, err := m.Run(context.Background(), engine.KindRetry, in, engine.Limits{}, &d)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(&d)
	return &decisionlog.Record{At: time.Now().UTC(), Route: in.Route, Kind: "retry", MessageID: in.MessageID, Module: "backoff", Version: version,
		SHA256: m.SHA256(), Role: role, Input: in, Output: out, Fuel: st.Fuel, WallTimeNs: int64(st.WallTime)}
}

func publishRecord(t *testing.T, js jetstream.JetStream, r *decisionlog.Record) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), decisionlog.Subject(r.Route), b); err != nil {
		t.Fatal(err)
	}
}

func decisionInput(id string, status int32) *abi.Input {
	return &abi.Input{Route: "orders", MessageID: id, Attempt: 1, MaxAttempts: 5, Error: abi.AttemptError{Attempt: 1, Kind: abi.ErrorStatus, Status: status}}
}

// TestDecisionCommands: decisions list and tail, module diff and replay
// over records published by hand onto bw.decisions.<route>.
func TestDecisionCommands(t *testing.T) {
	var no atomic.Bool
	up := upstream(t, &no)
	cli := startService(t, fmt.Sprintf(`
  - name: orders
    target: {http: {url: %s}}`, up.URL), "")
	ctx := context.Background()
	_, js := testkit.Connect(t, cliNATSURL(t, cli))
	runSteps(t, cli, []cliStep{
		{args: []string{"module", "push", moduleFile("retry-exponential.wasm"), "--name", "backoff"}, want: []string{"pushed backoff v1"}},
		{args: []string{"module", "push", moduleFile("retry-status-aware.wasm"), "--name", "backoff"}, want: []string{"pushed backoff v2"}},
		// Nothing recorded yet: a clear message, not a 0% report.
		{args: []string{"module", "replay", "backoff", "v2"}, want: []string{"no recorded decisions", "routes[].modules.record", "decisions.sample", "shadow"}, fail: true},
		{args: []string{"module", "diff", "backoff"}, want: []string{"no shadow decisions", "runtime module shadow backoff"}, fail: true},
		{args: []string{"decisions", "list"}, want: []string{"no recorded decisions", "routes[].modules.record"}},
	})

	eng, err := engine.New(ctx, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close(ctx) })
	aware, err := eng.Load(ctx, engine.LoadSpec{Name: "backoff", Version: "v2", Wasm: testkit.Module(t, "retry-status-aware"), Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	// Acted-on decisions of v2 (status-aware): a 404 it does not retry,
	// a 503 it does.
	publishRecord(t, js, decide(t, aware, "v2", decisionlog.RoleCurrent, decisionInput("m-404", 404)))
	publishRecord(t, js, decide(t, aware, "v2", decisionlog.RoleCanary, decisionInput("m-503", 503)))
	// Shadow records: one agreeing, one not, one breach.
	yes, no2 := true, false
	sh := func(id, cur, out string, agree *bool) *decisionlog.Record {
		return &decisionlog.Record{At: time.Now().UTC(), Route: "orders", Kind: "retry", MessageID: id, Module: "backoff", Version: "v2", Role: decisionlog.RoleShadow,
			Input: decisionInput(id, 503), Output: json.RawMessage(out), CurrentOutput: json.RawMessage(cur), Fuel: 2000, CurrentFuel: 1000, Agree: agree}
	}
	publishRecord(t, js, sh("s-1", `{"retry":true,"delay_ms":200}`, `{"retry":true,"delay_ms":200}`, &yes))
	publishRecord(t, js, sh("s-2", `{"retry":true,"delay_ms":120}`, `{"retry":false,"delay_ms":0,"reason":"status 404 is not retryable"}`, &no2))
	breach := sh("s-3", `{"retry":true,"delay_ms":80}`, "", &no2)
	breach.Output, breach.Breach, breach.Error = nil, "fuel", "fuel limit exceeded"
	publishRecord(t, js, breach)
	// Another route, another module.
	other := decide(t, aware, "v7", decisionlog.RoleCurrent, decisionInput("x-1", 500))
	other.Route, other.Module = "payments", "other"
	publishRecord(t, js, other)

	runSteps(t, cli, []cliStep{
		{args: []string{"decisions", "list"}, want: []string{"orders retry id=m-404 backoff@v2 current", `"retry":false`, "fuel=", "wall=", "id=s-3", "breach=fuel", "id=x-1"}},
		{args: []string{"decisions", "list", "--role", "shadow", "--module", "backoff"}, want: []string{"id=s-1", "agree=true", "id=s-2 backoff@v2 shadow", "agree=false", "current="}},
		{args: []string{"decisions", "list", "--route", "payments"}, want: []string{"id=x-1 other@v7"}},
		{args: []string{"decisions", "list", "--limit", "2"}, want: []string{"id=m-404", "id=m-503", "the first 2"}},
		{args: []string{"decisions", "list", "--role", "boss"}, want: []string{`--role "boss"`, "current, canary or shadow"}, fail: true},
		{args: []string{"decisions", "list", "--module", "nosuch"}, want: []string{"no recorded decisions match"}},
		// diff: 1 of 3 agreed, the breach counted, the shadow's fuel double.
		{args: []string{"module", "diff", "backoff"}, want: []string{"shadow v2 vs current, 3 decisions", "agreed:    1 of 3 (33.3%)", "breaches:  1 (fuel 1)",
			"current 1000, shadow 2000 per decision: +1000 (+100.0%)", "message s-2", "error status 503", "status 404 is not retryable", "message s-3"}},
		{args: []string{"module", "diff", "backoff", "--examples", "1"}, want: []string{"divergent examples (1 of 2)"}},
		{args: []string{"module", "diff", "backoff", "--route", "payments"}, want: []string{"no shadow decisions", "on route payments"}, fail: true},
		// replay: v2 made the records, so it agrees; v1 does not.
		{args: []string{"module", "replay", "backoff", "v2"}, want: []string{"candidate v2 replayed on 2 recorded decisions", "v2 canary (1), v2 current (1)", "agreed:    2 of 2 (100.0%)", "breaches:  0", "+0 (+0.0%)", "skipped:   shadow records (their decisions were not acted on): 3"}},
		{args: []string{"module", "replay", "backoff", "1"}, want: []string{"candidate v1 replayed on 2 recorded decisions", "agreed:    0 of 2 (0.0%)", "message m-404", "error status 404", `recorded:  {"retry":false`, `candidate: {"retry":true`}},
		{args: []string{"module", "replay", "backoff", "v1", "--limit", "1"}, want: []string{"replayed on 1 recorded decisions", "message m-503"}},
		{args: []string{"module", "replay", "backoff", "v9"}, want: []string{"v9", "runtime module show backoff"}, fail: true},
		{args: []string{"module", "replay", "backoff"}, want: []string{"accepts 2 arg"}, fail: true},
		{args: []string{"module", "replay", "backoff", "v2", "--route", "payments"}, want: []string{"no recorded decisions", "routes[].modules.record"}, fail: true},
	})

	// JSON forms.
	out, err := runCLI(t, "decisions", "list", "--module", "backoff", "-o", "json", "--config", cli)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("decisions list -o json: %d lines:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var r decisionlog.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Module != "backoff" || r.Input == nil {
			t.Fatalf("line %q: %v %+v", l, err, r)
		}
	}
	out, err = runCLI(t, "module", "replay", "backoff", "v2", "-o", "json", "--config", cli)
	if err != nil {
		t.Fatal(err)
	}
	var rep decisionlog.ReplayReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Compared != 2 || rep.AgreementRate != 1 || len(rep.Records) != 2 || rep.Fuel.Delta != 0 {
		t.Fatalf("replay -o json: %v %+v\n%s", err, rep, out)
	}
	out, err = runCLI(t, "module", "diff", "backoff", "-o", "json", "--config", cli)
	var drep decisionlog.DiffReport
	if err != nil || json.Unmarshal([]byte(out), &drep) != nil || drep.Total != 3 || drep.Agreed != 1 || drep.Breaches != 1 {
		t.Fatalf("diff -o json: %v %+v\n%s", err, drep, out)
	}

	// tail: records as they are stored, until the context ends.
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var tailOut syncBuffer
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetOut(&tailOut)
		root.SetErr(&tailOut)
		root.SetArgs([]string{"decisions", "tail", "--module", "backoff", "--role", "canary", "-o", "json", "--config", cli})
		done <- root.ExecuteContext(tctx)
	}()
	rec := decide(t, aware, "v2", decisionlog.RoleCanary, decisionInput("tail-1", 503))
	skip := decide(t, aware, "v2", decisionlog.RoleCurrent, decisionInput("tail-skip", 503))
	testkit.Eventually(t, 20*time.Second, "tail prints the new canary record", func() bool {
		publishRecord(t, js, skip)
		publishRecord(t, js, rec)
		time.Sleep(200 * time.Millisecond)
		return strings.Contains(tailOut.String(), `"message_id":"tail-1"`)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tail: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not stop when its context ended")
	}
	got := tailOut.String()
	if strings.Contains(got, "tail-skip") || strings.Contains(got, "m-503") {
		t.Fatalf("tail printed records it should not:\n%s", got)
	}
	for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
		var r decisionlog.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Role != decisionlog.RoleCanary {
			t.Fatalf("tail line %q: %v", l, err)
		}
	}
	// The human form, and a bad role.
	runSteps(t, cli, []cliStep{
		{args: []string{"decisions", "tail", "--role", "x"}, want: []string{"current, canary or shadow"}, fail: true},
	})
}
