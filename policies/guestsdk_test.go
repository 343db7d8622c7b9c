package policies_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// guestSDKDir is guest-sdk/, a module of its own (see go.work).
const guestSDKDir = "../guest-sdk"

// goTool returns the go tool, failing the test without it.
func goTool(t *testing.T) string {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed: %v", err)
	}
	return gotool
}

// run runs the go tool in dir with env added, bounded by ctx, and returns
// its output; a failure shows the output.
func run(ctx context.Context, t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, goTool(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// TestGuestSDK runs the tests of guest-sdk, its own module, which `go test
// ./...` from the repository root does not reach: ./... stops at module
// boundaries. It runs them from the root, in workspace mode (go.work).
func TestGuestSDK(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	args := []string{"test"}
	if testing.Short() {
		args = append(args, "-short")
	}
	args = append(args, "./guest-sdk/...")
	out := run(ctx, t, "..", nil, args...)
	t.Logf("go %s:\n%s", strings.Join(args, " "), out)
}

// TestAuthorModule is a module author's view: a module of its own that
// requires guest-sdk (here replaced by this repository's copy) has a module
// graph of two modules, the author's and guest-sdk (none of the host's
// dependencies: nats-server, wazero, viper, prometheus, cobra...), and
// builds with the documented one-line build. Everything runs offline.
func TestAuthorModule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sdk, err := filepath.Abs(guestSDKDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := "module example.com/mypolicy\n\ngo 1.26.0\n\n" +
		"require github.com/breakwater-dev/breakwater/guest-sdk v0.0.0\n\n" +
		"replace github.com/breakwater-dev/breakwater/guest-sdk => " + sdk + "\n"
	main := `package main

import (
	"github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/retry"
)

func init() {
	retry.Handle(func(in *guest.Input) guest.RetryDecision {
		if in.Error.Kind == guest.ErrorStatus && in.Error.Status < 500 {
			return guest.RetryDecision{Retry: false, Reason: "client error"}
		}
		return guest.RetryDecision{Retry: true, DelayMs: 100 * int64(in.Attempt)}
	})
}

func main() {}
`
	for name, text := range map[string]string{"go.mod": gomod, "main.go": main} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	offline := []string{"GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local"}
	run(ctx, t, dir, offline, "mod", "tidy")
	graph := strings.Fields(run(ctx, t, dir, offline, "list", "-m", "-f", "{{.Path}}", "all"))
	want := []string{"example.com/mypolicy", "github.com/breakwater-dev/breakwater/guest-sdk"}
	if strings.Join(graph, " ") != strings.Join(want, " ") {
		t.Errorf("module graph %q, want only %q", graph, want)
	}
	for _, host := range []string{"nats-server", "wazero", "viper", "prometheus", "cobra", "protobuf"} {
		if strings.Contains(strings.Join(graph, " "), host) {
			t.Errorf("the module graph pulls in %s: %q", host, graph)
		}
	}

	// The one-line build of the documentation:
	//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm .
	run(ctx, t, dir, append(offline, "GOOS=wasip1", "GOARCH=wasm"), "build", "-buildmode=c-shared", "-o", "policy.wasm", ".")
	wasm, err := os.ReadFile(filepath.Join(dir, "policy.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(wasm, []byte("\x00asm")) {
		t.Errorf("policy.wasm (%d bytes) is not a WebAssembly module", len(wasm))
	}
}
