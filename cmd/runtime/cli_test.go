package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/testkit/servicetest"
)

// runCLI runs the runtime command line in-process and returns its output
// (stdout and stderr together).
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := runCLIFull(t, nil, args...)
	return out + errOut, err
}

// runCLIFull runs the command line with stdin and returns stdout and
// stderr apart.
func runCLIFull(t *testing.T, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	if stdin != nil {
		root.SetIn(stdin)
	}
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// codeOf is the exit code main would exit with.
func codeOf(err error) int { return exitCode(err) }

// startService runs a service with routes (YAML list items, indented by
// two spaces) and returns the path of a CLI config pointing at it; the CLI
// config holds cliRoutes ("" : none, a client config).
func startService(t *testing.T, routes, cliRoutes string) string {
	t.Helper()
	dir := t.TempDir()
	in := servicetest.Service(t, fmt.Sprintf(`
nats:
  embedded: {port: -1, store_dir: %s}
http: {listen: ""}
routes:
%s
modules:
  cache_dir: none
`, filepath.Join(dir, "js"), routes))
	svc := in.Service
	cli := filepath.Join(dir, "cli.yaml")
	body := "nats:\n  url: " + svc.NATSURL() + "\nmodules:\n  cache_dir: none\n"
	if cliRoutes != "" {
		body += "routes:\n" + cliRoutes + "\n"
	}
	// cache_dir none: the test leaves nothing in the user's state directory.
	writeFile(t, cli, body)
	return cli
}

// upstream is an HTTP target that fails while failing is set.
func upstream(t *testing.T, failing *atomic.Bool) *testkit.Upstream {
	t.Helper()
	up := testkit.NewUpstream(t)
	up.Respond(func(*http.Request, []byte, int) testkit.Reply {
		if failing.Load() {
			return testkit.Reply{Status: http.StatusInternalServerError, Body: "down\n"}
		}
		return testkit.Reply{Body: `{"ok":true}`}
	})
	return up
}

// TestOperatorCommands drives publish, dlq, flag and module commands
// against a running service.
func TestOperatorCommands(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	up := upstream(t, &failing)
	cli := startService(t, fmt.Sprintf(`
  - name: orders
    target: {http: {url: %s}}
    max_attempts: 2
    backoff: {initial: 5ms, max: 10ms}`, up.URL), "")

	steps := []struct {
		args []string
		want []string // fragments of the output
		code int      // exit code
	}{
		{[]string{"publish", "orders", `{"n":1}`, "--id", "o-1", "--wait", "20s"}, []string{"outcome=dead", "attempts=2", "status"}, exitDead},
		{[]string{"publish", "orders", `{"n":1}`, "--id", "o-1"}, []string{"duplicate"}, 0},
		{[]string{"dlq", "list", "orders"}, []string{"id=o-1", "attempts=2", "status(500)"}, 0},
		{[]string{"dlq", "replay", "orders", "--id", "nope"}, nil, exitError},
		{[]string{"flag", "set", "orders.enabled", "off"}, nil, exitError},
		{[]string{"flag", "set", "orders.enabled", "false"}, []string{"orders.enabled = false"}, 0},
		{[]string{"flag", "list"}, []string{"orders.enabled = false"}, 0},
		{[]string{"flag", "rm", "orders.enabled"}, []string{"removed"}, 0},
		{[]string{"module", "push", "../../modules/fixtures/trap.wasm", "--name", "bad"}, nil, exitError},
		{[]string{"module", "push", "../../modules/retry-constant.wasm", "--name", "const"}, []string{"pushed const v1"}, 0},
		{[]string{"module", "push", "../../modules/retry-constant.wasm", "--name", "const"}, []string{"pushed const v2"}, 0},
		{[]string{"module", "list"}, []string{"const", "v2"}, 0},
		{[]string{"module", "rollback", "const"}, []string{"v1 is current"}, 0},
		{[]string{"module", "show", "const"}, []string{"* v1", "  v2"}, 0},
		// A client config names no routes: rm cannot tell who uses the module.
		{[]string{"module", "rm", "const"}, []string{"cannot tell", "--force"}, exitError},
		{[]string{"module", "rm", "const", "--force"}, []string{"removed const"}, 0},
	}
	for _, s := range steps {
		out, err := runCLI(t, append(s.args, "--config", cli)...)
		if codeOf(err) != s.code {
			t.Fatalf("%v: exit %d, want %d: err %v (output %q)", s.args, codeOf(err), s.code, err, out)
		}
		if err != nil {
			out += err.Error()
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Fatalf("%v: output %q lacks %q", s.args, out, w)
			}
		}
	}
	failing.Store(false)
	out, err := runCLI(t, "dlq", "replay", "orders", "--config", cli)
	if err != nil || !strings.Contains(out, "replayed 1") {
		t.Fatalf("replay: %q %v", out, err)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
