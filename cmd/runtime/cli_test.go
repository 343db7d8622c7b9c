package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/service"
)

// runCLI runs the runtime command line in-process and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestOperatorCommands drives publish, dlq, flag and module commands
// against a running service.
func TestOperatorCommands(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "down", 500)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer up.Close()
	dir := t.TempDir()
	serveCfg := filepath.Join(dir, "serve.yaml")
	writeFile(t, serveCfg, fmt.Sprintf(`
nats:
  embedded: {port: -1, store_dir: %s}
http: {listen: ""}
routes:
  - name: orders
    target: {http: {url: %s}}
    max_attempts: 2
    backoff: {initial: 5ms, max: 10ms}
modules:
  cache_dir: none
`, filepath.Join(dir, "js"), up.URL))
	cfg, err := config.Load(serveCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	cli := filepath.Join(dir, "cli.yaml")
	// cache_dir none: the test leaves nothing in the user's state directory.
	if err := os.WriteFile(cli, []byte("nats:\n  url: "+svc.NATSURL()+"\nmodules:\n  cache_dir: none\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		args []string
		want []string // fragments of the output
		fail bool
	}{
		{[]string{"publish", "orders", `{"n":1}`, "--id", "o-1", "--wait", "20s"}, []string{"outcome=dead", "attempts=2", "status"}, false},
		{[]string{"publish", "orders", `{"n":1}`, "--id", "o-1"}, []string{"duplicate"}, false},
		{[]string{"dlq", "list", "orders"}, []string{"id=o-1", "attempts=2", "status(500)"}, false},
		{[]string{"dlq", "replay", "orders", "--id", "nope"}, nil, true},
		{[]string{"flag", "set", "orders.enabled", "off"}, nil, true},
		{[]string{"flag", "set", "orders.enabled", "false"}, []string{"orders.enabled = false"}, false},
		{[]string{"flag", "list"}, []string{"orders.enabled = false"}, false},
		{[]string{"flag", "rm", "orders.enabled"}, []string{"removed"}, false},
		{[]string{"module", "push", "../../modules/fixtures/trap.wasm", "--name", "bad"}, nil, true},
		{[]string{"module", "push", "../../modules/retry-constant.wasm", "--name", "const"}, []string{"pushed const v1"}, false},
		{[]string{"module", "push", "../../modules/retry-constant.wasm", "--name", "const"}, []string{"pushed const v2"}, false},
		{[]string{"module", "list"}, []string{"const", "v2"}, false},
		{[]string{"module", "rollback", "const"}, []string{"v1 is current"}, false},
		{[]string{"module", "show", "const"}, []string{"* v1", "  v2"}, false},
		{[]string{"module", "rm", "const"}, []string{"removed const"}, false},
	}
	for _, s := range steps {
		out, err := runCLI(t, append(s.args, "--config", cli)...)
		if (err != nil) != s.fail {
			t.Fatalf("%v: err %v (output %q)", s.args, err, out)
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
