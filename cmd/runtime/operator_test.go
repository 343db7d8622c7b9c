package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// opRoutes: ok always answers; dead always fails (dead letter); stubbed
// always fails and has a stub; slow fails and retries for a long time (in
// flight for the test's duration).
func opRoutes(okURL, failURL string) string {
	return fmt.Sprintf(`
  - name: ok
    target: {http: {url: %[1]s}}
  - name: dead
    target: {http: {url: %[2]s}}
    max_attempts: 2
    backoff: {initial: 5ms, max: 10ms}
  - name: stubbed
    target: {name: flaky-api, http: {url: %[2]s}}
    max_attempts: 2
    backoff: {initial: 5ms, max: 10ms}
    stub: {payload: '{"stub":true}'}
  - name: slow
    target: {http: {url: %[2]s}}
    max_attempts: 50
    backoff: {initial: 30s, max: 30s}`, okURL, failURL)
}

func startOpService(t *testing.T, cliRoutes bool) string {
	t.Helper()
	var no, yes atomic.Bool
	yes.Store(true)
	okUp, failUp := upstream(t, &no), upstream(t, &yes)
	routes := opRoutes(okUp.URL, failUp.URL)
	cr := ""
	if cliRoutes {
		cr = routes + `
  - name: uses-const
    target: {http: {url: ` + okUp.URL + `}}
    modules:
      retry: {name: const}`
	}
	return startService(t, routes, cr)
}

// TestPublishCommand: headers are checked, the payload comes from the
// argument, a file or stdin, outcomes map to exit codes, and a duplicate
// id with --wait returns the stored outcome or says it has none yet.
func TestPublishCommand(t *testing.T) {
	cli := startOpService(t, false)
	payloadFile := filepath.Join(t.TempDir(), "p.json")
	writeFile(t, payloadFile, `{"from":"file"}`)
	steps := []struct {
		args  []string
		stdin string
		want  []string // fragments of stdout+stderr+error
		code  int
	}{
		{[]string{"publish", "ok", "x", "-H", "no-colon"}, "", []string{"NAME:VALUE"}, exitError},
		{[]string{"publish", "ok", "x", "-H", "bad name: v"}, "", []string{"NAME:VALUE"}, exitError},
		{[]string{"publish", "ok", "x", "-H", "Nats-Expected-Stream: BW_IN"}, "", []string{"namespaces", "Bw-Reply-To"}, exitError},
		{[]string{"publish", "ok", "x", "-H", "bw-outcome: ok"}, "", []string{"namespaces"}, exitError},
		{[]string{"publish", "ok", "x", "-H", "Nats-Msg-Id: a"}, "", []string{"--id"}, exitError},
		{[]string{"publish", "ok", "x", "-H", "Bw-Reply-To: _INBOX.x", "--wait", "1s"}, "", []string{"drop -H Bw-Reply-To or --wait"}, exitError},
		{[]string{"publish", "ok"}, "", []string{"no payload"}, exitError},
		{[]string{"publish", "ok", "x", "-f", payloadFile}, "", []string{"payload given twice"}, exitError},
		{[]string{"publish", "ok", "x", "-o", "yaml"}, "", []string{"text or json"}, exitError},
		{[]string{"publish", "ok", `{"n":1}`, "--id", "p-ok", "--wait", "20s", "-H", "X-Tenant: acme", "-H", "Bw-Deadline-Ms: 5000"}, "", []string{"published bw.in.ok id=p-ok", "outcome=ok attempts=1", `{"ok":true}`}, exitOK},
		{[]string{"publish", "ok", "-f", payloadFile, "--id", "p-file", "--wait", "20s"}, "", []string{"outcome=ok"}, exitOK},
		{[]string{"publish", "ok", "-", "--id", "p-stdin", "--wait", "20s"}, `{"from":"stdin"}`, []string{"outcome=ok"}, exitOK},
		{[]string{"publish", "ok", "x", "--id", "p-nowait"}, "", []string{"published bw.in.ok id=p-nowait"}, exitOK},
		{[]string{"publish", "dead", "x", "--id", "p-dead", "--wait", "20s"}, "", []string{"outcome=dead attempts=2", "outcome dead (exit 5)"}, exitDead},
		{[]string{"publish", "stubbed", "x", "--id", "p-stub", "--wait", "20s"}, "", []string{"outcome=stub", `{"stub":true}`}, exitStub},
		// Duplicates: the stored outcome, with its exit code.
		{[]string{"publish", "ok", `{"n":1}`, "--id", "p-ok", "--wait", "5s"}, "", []string{"duplicate", "outcome=ok attempts=1", `{"ok":true}`}, exitOK},
		{[]string{"publish", "dead", "x", "--id", "p-dead", "--wait", "5s"}, "", []string{"duplicate", "outcome=dead attempts=2"}, exitDead},
		{[]string{"publish", "ok", "x", "--id", "p-nowait", "--wait", "5s"}, "", []string{"duplicate", "outcome=ok"}, exitOK},
		// In flight: no outcome within --wait, and again for the duplicate.
		{[]string{"publish", "slow", "x", "--id", "p-slow", "--wait", "300ms"}, "", []string{"no outcome within --wait", "runtime inspect slow p-slow"}, exitNoOutcome},
		{[]string{"publish", "slow", "x", "--id", "p-slow", "--wait", "300ms"}, "", []string{"duplicate", "no outcome yet", "still in flight"}, exitNoOutcome},
	}
	for _, s := range steps {
		var in *strings.Reader
		if s.stdin != "" {
			in = strings.NewReader(s.stdin)
		}
		var out, errOut string
		var err error
		if in != nil {
			out, errOut, err = runCLIFull(t, in, append(s.args, "--config", cli)...)
		} else {
			out, errOut, err = runCLIFull(t, nil, append(s.args, "--config", cli)...)
		}
		all := out + errOut
		if err != nil {
			all += "\n" + err.Error()
		}
		if codeOf(err) != s.code {
			t.Fatalf("%v: exit %d, want %d: %s", s.args, codeOf(err), s.code, all)
		}
		for _, w := range s.want {
			if !strings.Contains(all, w) {
				t.Fatalf("%v: output lacks %q:\n%s", s.args, w, all)
			}
		}
	}

	// JSON: one document with the outcome.
	out, _, err := runCLIFull(t, nil, "publish", "ok", `{"n":2}`, "--id", "p-json", "--wait", "20s", "-o", "json", "--config", cli)
	if err != nil {
		t.Fatalf("publish -o json: %v %s", err, out)
	}
	var v publishView
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID != "p-json" || v.Outcome == nil || v.Outcome.Outcome != "ok" || v.Seq == 0 {
		t.Fatalf("publish -o json: %v %+v\n%s", err, v, out)
	}
}

// TestCallCommand: the sync path prints outcome, status and body, with the
// exit codes of publish, 7 for an error reply and 1 when nothing answers.
func TestCallCommand(t *testing.T) {
	cli := startOpService(t, false)
	steps := []struct {
		args []string
		want []string
		code int
	}{
		{[]string{"call", "ok", `{"n":1}`, "-H", "X-Tenant: acme"}, []string{"outcome=ok attempts=1", `{"ok":true}`}, exitOK},
		{[]string{"call", "stubbed", "x", "--timeout", "10s"}, []string{"outcome=stub", `{"stub":true}`}, exitStub},
		{[]string{"call", "dead", "x", "--timeout", "10s"}, []string{"outcome=error", "status=", "answered with an error"}, exitCallError},
		{[]string{"call", "nosuchroute", "x", "--timeout", "2s"}, []string{"nothing answers on bw.call.nosuchroute"}, exitError},
		{[]string{"call", "ok", "x", "-H", "Bw-Outcome: ok"}, []string{"namespaces"}, exitError},
		{[]string{"call", "ok", "x", "--timeout", "0s"}, []string{"positive duration"}, exitError},
	}
	for _, s := range steps {
		out, err := runCLI(t, append(s.args, "--config", cli)...)
		if err != nil {
			out += "\n" + err.Error()
		}
		if codeOf(err) != s.code {
			t.Fatalf("%v: exit %d, want %d: %s", s.args, codeOf(err), s.code, out)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Fatalf("%v: output lacks %q:\n%s", s.args, w, out)
			}
		}
	}
	out, _, err := runCLIFull(t, nil, "call", "dead", "x", "-o", "json", "--config", cli)
	var v outcomeView
	if codeOf(err) != exitCallError || json.Unmarshal([]byte(out), &v) != nil || v.Outcome != "error" || v.Status == 0 || v.ErrorKind == "" {
		t.Fatalf("call -o json: exit %d %+v\n%s", codeOf(err), v, out)
	}
}

// TestDLQCommands: list across routes, show by sequence and id, rm and
// purge only with --force, and replays carry Bw-Replay-Of with the
// producer's original id, through repeated replays.
func TestDLQCommands(t *testing.T) {
	cli := startOpService(t, false)
	for _, p := range [][]string{{"dead", "d-1"}, {"dead", "d-2"}, {"stubbed", "x"}, {"dead", "d-3"}} {
		if p[0] == "stubbed" {
			continue
		}
		if _, err := runCLI(t, "publish", p[0], `{"n":1}`, "--id", p[1], "--wait", "20s", "--config", cli); codeOf(err) != exitDead {
			t.Fatalf("publish %v: %v", p, err)
		}
	}
	run := func(want int, args ...string) string {
		t.Helper()
		out, err := runCLI(t, append(args, "--config", cli)...)
		if err != nil {
			out += "\n" + err.Error()
		}
		if codeOf(err) != want {
			t.Fatalf("%v: exit %d, want %d: %s", args, codeOf(err), want, out)
		}
		return out
	}
	contains := func(out string, ws ...string) {
		t.Helper()
		for _, w := range ws {
			if !strings.Contains(out, w) {
				t.Fatalf("output lacks %q:\n%s", w, out)
			}
		}
	}
	contains(run(0, "dlq", "list"), "route=dead", "id=d-1", "id=d-2", "id=d-3")
	var listed []parkedView
	if err := json.Unmarshal([]byte(run(0, "dlq", "list", "-o", "json")), &listed); err != nil || len(listed) != 3 || listed[0].Route != "dead" || listed[0].Record.MessageID != "d-1" {
		t.Fatalf("dlq list -o json: %v %+v", err, listed)
	}
	// The hidden --json alias still works.
	if err := json.Unmarshal([]byte(run(0, "dlq", "list", "dead", "--json")), &listed); err != nil || len(listed) != 3 {
		t.Fatalf("dlq list --json: %v", err)
	}
	seq1 := fmt.Sprint(listed[0].DLQSeq)
	contains(run(0, "dlq", "show", "dead", "d-1"), "dead letter #"+seq1, "id:          d-1", "errors (2, oldest first)", "status=500", "payload (7 bytes)")
	contains(run(0, "dlq", "show", "dead", seq1), "id:          d-1")
	var shown []parkedView
	if err := json.Unmarshal([]byte(run(0, "dlq", "show", "dead", "d-2", "-o", "json")), &shown); err != nil || len(shown) != 1 || len(shown[0].Record.Errors) != 2 {
		t.Fatalf("dlq show -o json: %v %+v", err, shown)
	}
	contains(run(exitNotFound, "dlq", "show", "dead", "nope"), "no dead letter", "runtime dlq list dead")

	// rm: refused without --force, saying what would go.
	contains(run(exitError, "dlq", "rm", "dead", "d-2"), "--force", "#", "id=d-2")
	contains(run(0, "dlq", "rm", "dead", "d-2", "--force"), "removed 1", "id=d-2")
	contains(run(exitNotFound, "dlq", "show", "dead", "d-2"), "no dead letter")

	// Replay d-1 (dies again), then its replay: Bw-Replay-Of stays d-1.
	contains(run(0, "dlq", "replay", "dead", "--id", "d-1"), "replayed 1")
	var again []parkedView
	waitFor(t, 20*time.Second, "the replay to die again", func() bool {
		out, err := runCLI(t, "dlq", "list", "dead", "-o", "json", "--config", cli)
		again = nil
		if err != nil || json.Unmarshal([]byte(out), &again) != nil {
			return false
		}
		for _, p := range again {
			if p.Record != nil && strings.HasPrefix(p.Record.MessageID, "d-1-replay-") {
				return true
			}
		}
		return false
	})
	var replayed parkedView
	for _, p := range again {
		if p.Record != nil && strings.HasPrefix(p.Record.MessageID, "d-1-replay-") {
			replayed = p
		}
	}
	if got := replayed.Record.Headers["Bw-Replay-Of"]; len(got) != 1 || got[0] != "d-1" {
		t.Fatalf("replayed message's Bw-Replay-Of = %v, want [d-1] (headers %v)", got, replayed.Record.Headers)
	}
	contains(run(0, "dlq", "replay", "dead", "--id", replayed.Record.MessageID), "replayed 1")
	waitFor(t, 20*time.Second, "the second replay to die again", func() bool {
		out, _ := runCLI(t, "dlq", "list", "dead", "-o", "json", "--config", cli)
		return strings.Contains(out, replayed.Record.MessageID+"-replay-")
	})
	var twice []parkedView
	_ = json.Unmarshal([]byte(run(0, "dlq", "list", "dead", "-o", "json")), &twice)
	for _, p := range twice {
		if p.Record != nil && strings.HasPrefix(p.Record.MessageID, replayed.Record.MessageID+"-replay-") {
			if got := p.Record.Headers["Bw-Replay-Of"]; len(got) != 1 || got[0] != "d-1" {
				t.Fatalf("second replay's Bw-Replay-Of = %v, want [d-1]", got)
			}
		}
	}

	// purge: refused without --force, then everything of the route goes.
	contains(run(exitError, "dlq", "purge", "dead"), "--force", "would remove 2", "id=d-3")
	contains(run(0, "dlq", "purge", "dead", "--force"), "purged 2")
	contains(run(0, "dlq", "list", "dead"), "no dead letters")
	contains(run(0, "dlq", "purge", "dead"), "nothing to purge")
}

// TestInspectCommand: an in-flight message's attempt history from BW_IN
// and bw_attempts; a message that is done or unknown is said to be.
func TestInspectCommand(t *testing.T) {
	cli := startOpService(t, false)
	if _, err := runCLI(t, "publish", "slow", `{"n":1}`, "--id", "s-1", "--config", cli); err != nil {
		t.Fatal(err)
	}
	var out string
	waitFor(t, 20*time.Second, "the first failed attempt in the history", func() bool {
		out, _ = runCLI(t, "inspect", "slow", "s-1", "--config", cli)
		return strings.Contains(out, "1 failed target call")
	})
	for _, w := range []string{"message s-1 of route slow is in flight: BW_IN seq", "status status=500", "down"} {
		if !strings.Contains(out, w) {
			t.Fatalf("inspect lacks %q:\n%s", w, out)
		}
	}
	jout, _, err := runCLIFull(t, nil, "inspect", "slow", "s-1", "-o", "json", "--config", cli)
	var v inspectView
	if err != nil || json.Unmarshal([]byte(jout), &v) != nil || !v.InFlight || v.Seq == 0 || v.TargetCalls != 1 || len(v.Errors) != 1 || v.Errors[0].Status != 500 {
		t.Fatalf("inspect -o json: %v %+v\n%s", err, v, jout)
	}
	// Done, dead-lettered, unknown.
	if _, err := runCLI(t, "publish", "ok", "x", "--id", "s-ok", "--wait", "20s", "--config", cli); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "publish", "dead", "x", "--id", "s-dead", "--wait", "20s", "--config", cli); codeOf(err) != exitDead {
		t.Fatal(err)
	}
	for _, c := range [][]string{{"ok", "s-ok", "not in flight", "reached its outcome"}, {"dead", "s-dead", "dead-lettered", "runtime dlq show dead s-dead"}, {"slow", "nope", "not in flight"}} {
		_, _, err := runCLIFull(t, nil, "inspect", c[0], c[1], "--config", cli)
		if codeOf(err) != exitNotFound {
			t.Fatalf("inspect %v: exit %d (%v)", c[:2], codeOf(err), err)
		}
		for _, w := range c[2:] {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("inspect %v: %v lacks %q", c[:2], err, w)
			}
		}
	}
}

// TestGuardRails: flag set warns about routes and targets the config does
// not have; module rm refuses a module a route uses; versions are v1 or 1;
// module commands take --sign-key; module and flag reads speak JSON.
func TestGuardRails(t *testing.T) {
	cli := startOpService(t, true)
	dir := t.TempDir()
	seed := filepath.Join(dir, "ops.seed")
	steps := []struct {
		args    []string
		stdout  []string
		stderr  []string // "-" : stderr must be empty
		code    int
		errPart string
	}{
		{[]string{"flag", "set", "ok.enabled", "false"}, []string{"ok.enabled = false"}, []string{"-"}, 0, ""},
		{[]string{"flag", "set", "global.maintenance", "true"}, nil, []string{"-"}, 0, ""},
		{[]string{"flag", "set", "target.flaky-api.enabled", "false"}, nil, []string{"-"}, 0, ""},
		{[]string{"flag", "set", "target.dead.enabled", "true"}, nil, []string{"-"}, 0, ""},
		{[]string{"flag", "set", "orderz.enabled", "false"}, []string{"orderz.enabled = false"}, []string{`warning: the config in use has no route "orderz"`, "routes: ok, dead"}, 0, ""},
		{[]string{"flag", "set", "target.nope.enabled", "false"}, nil, []string{`no target "nope"`, "flaky-api"}, 0, ""},
		{[]string{"flag", "get", "ok.enabled", "-o", "json"}, []string{`"key": "ok.enabled"`, `"value": "false"`}, nil, 0, ""},
		{[]string{"flag", "list", "-o", "json"}, []string{`"key": "global.maintenance"`}, nil, 0, ""},
		{[]string{"module", "keygen", "--out", seed}, []string{"U"}, nil, 0, ""},
		{[]string{"module", "sign", "../../modules/retry-constant.wasm", "--out", filepath.Join(dir, "c.sig")}, nil, nil, exitError, "--sign-key"},
		{[]string{"module", "sign", "../../modules/retry-constant.wasm", "--sign-key", seed, "--out", filepath.Join(dir, "c.sig")}, []string{"signed by U"}, nil, 0, ""},
		{[]string{"module", "sign", "../../modules/retry-constant.wasm", "--key", seed, "--out", filepath.Join(dir, "c2.sig")}, []string{"signed by U"}, nil, 0, ""},
		{[]string{"module", "push", "../../modules/retry-constant.wasm", "--name", "const", "--sig", filepath.Join(dir, "c.sig")}, []string{"pushed const v1"}, nil, 0, ""},
		{[]string{"module", "push", "../../modules/retry-constant.wasm", "--name", "const", "--sign-key", seed}, []string{"pushed const v2"}, nil, 0, ""},
		{[]string{"module", "push", "../../modules/retry-constant.wasm", "--name", "const"}, []string{"pushed const v3"}, nil, 0, ""},
		{[]string{"module", "rollback", "const", "--to", "v1"}, []string{"v1 is current"}, nil, 0, ""},
		{[]string{"module", "rollback", "const", "--to", "2"}, []string{"v2 is current"}, nil, 0, ""},
		{[]string{"module", "rollback", "const", "--to", "x2"}, nil, nil, exitError, "v<N> or <N>"},
		{[]string{"module", "rollback", "const", "--to", "v0"}, nil, nil, exitError, "v<N> or <N>"},
		{[]string{"module", "list", "-o", "json"}, []string{`"name": "const"`, `"version": 2`}, nil, 0, ""},
		{[]string{"module", "show", "const", "-o", "json"}, []string{`"version": 3`, `"current": true`}, nil, 0, ""},
		{[]string{"module", "rm", "const"}, nil, nil, exitError, "route uses-const (retry)"},
		{[]string{"module", "rm", "const", "--force"}, []string{"removed const"}, nil, 0, ""},
	}
	for _, s := range steps {
		out, errOut, err := runCLIFull(t, nil, append(s.args, "--config", cli)...)
		if codeOf(err) != s.code {
			t.Fatalf("%v: exit %d, want %d: %v\n%s%s", s.args, codeOf(err), s.code, err, out, errOut)
		}
		if s.errPart != "" && !strings.Contains(err.Error(), s.errPart) {
			t.Fatalf("%v: error %v lacks %q", s.args, err, s.errPart)
		}
		for _, w := range s.stdout {
			if !strings.Contains(out, w) {
				t.Fatalf("%v: stdout lacks %q:\n%s", s.args, w, out)
			}
		}
		for _, w := range s.stderr {
			if w == "-" && errOut != "" {
				t.Fatalf("%v: unexpected stderr %q", s.args, errOut)
			}
			if w != "-" && !strings.Contains(errOut, w) {
				t.Fatalf("%v: stderr lacks %q:\n%s", s.args, w, errOut)
			}
		}
	}
}

// TestCompletion: cobra's completion command prints a script.
func TestCompletion(t *testing.T) {
	out, _, err := runCLIFull(t, nil, "completion", "bash")
	if err != nil || !strings.Contains(out, "bash completion") || !strings.Contains(out, "__runtime_") {
		t.Fatalf("completion bash: %v\n%.300s", err, out)
	}
}

// TestFlagUsagesHaveNoBackticks: cobra takes a back-quoted word in a
// flag's usage for the value placeholder ("--sig runtime module sign").
func TestFlagUsagesHaveNoBackticks(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				n++
				if strings.Contains(f.Usage, "`") {
					t.Errorf("%s --%s: usage %q has a backtick", c.CommandPath(), f.Name, f.Usage)
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := newRootCmd()
	root.InitDefaultCompletionCmd()
	walk(root)
	if n < 30 {
		t.Fatalf("walked only %d flags", n)
	}
}

// TestReadCommandsTakeOutput: every read command has --output/-o.
func TestReadCommandsTakeOutput(t *testing.T) {
	root := newRootCmd()
	for _, path := range [][]string{{"dlq", "list"}, {"dlq", "show"}, {"flag", "get"}, {"flag", "list"}, {"module", "list"}, {"module", "show"}, {"inspect"}, {"publish"}, {"call"}, {"module", "diff"}, {"module", "replay"}, {"decisions", "list"}, {"decisions", "tail"}} {
		c, _, err := root.Find(path)
		if err != nil || c.Flags().ShorthandLookup("o") == nil || c.Flags().Lookup("output") == nil {
			t.Errorf("%v: no --output/-o (%v)", path, err)
		}
	}
}
