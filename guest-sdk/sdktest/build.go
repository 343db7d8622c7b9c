package sdktest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// BuildCommand is the documented one-line build of a module, run in the
// directory of its package main:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm .
const BuildCommand = "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm ."

// Build builds the package main in the directory dir as a policy module
// into the file out, with the documented one-line build (BuildCommand, the
// output file aside). The go tool must be on PATH. The build's output is
// in the error when it fails.
func Build(ctx context.Context, dir, out string) error {
	gotool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("sdktest: building a module needs the go tool: %w", err)
	}
	if out, err = filepath.Abs(out); err != nil {
		return fmt.Errorf("sdktest: %w", err)
	}
	cmd := exec.CommandContext(ctx, gotool, "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	cmd.WaitDelay = 5 * time.Second
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sdktest: %s (in %s): %w\n%s", BuildCommand, dir, err, msg)
	}
	return nil
}

// The runtime built by findRuntime, once per process.
var built struct {
	mu   sync.Mutex
	path string
	err  error
}

// findRuntime returns the runtime binary: explicit, else $BREAKWATER_RUNTIME,
// else a build of RuntimePackage.
func findRuntime(ctx context.Context, explicit string) (string, error) {
	if explicit != "" {
		return checkRuntime(explicit, "Options.Runtime")
	}
	if env := os.Getenv(RuntimeEnv); env != "" {
		return checkRuntime(env, RuntimeEnv)
	}
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.path == "" && built.err == nil {
		built.path, built.err = buildRuntime(ctx)
	}
	return built.path, built.err
}

func checkRuntime(path, from string) (string, error) {
	p, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("sdktest: the runtime binary named by %s: %w", from, err)
	}
	return filepath.Abs(p)
}

// buildRuntime builds RuntimePackage into the user's cache directory, under
// a name given by the binary's hash (so that concurrent test processes
// share, and never overwrite, a binary).
func buildRuntime(ctx context.Context) (string, error) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		return "", runtimeError(fmt.Sprintf("the go tool is not on PATH (%v)", err))
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "breakwater-sdktest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("sdktest: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "build-*.tmp")
	if err != nil {
		return "", fmt.Errorf("sdktest: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gotool, "build", "-o", tmp.Name(), RuntimePackage)
	// The host's platform, whatever the environment asks of modules.
	cmd.Env = append(os.Environ(), "GOOS=", "GOARCH=")
	cmd.WaitDelay = 5 * time.Second
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", runtimeError(fmt.Sprintf("go build %s: %v\n%s", RuntimePackage, err, strings.TrimSpace(string(msg))))
	}
	f, err := os.Open(tmp.Name())
	if err != nil {
		return "", fmt.Errorf("sdktest: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("sdktest: %w", err)
	}
	path := filepath.Join(dir, "runtime-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.Chmod(tmp.Name(), 0o755); err != nil {
			return "", fmt.Errorf("sdktest: %w", err)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return "", fmt.Errorf("sdktest: %w", err)
		}
	}
	now := time.Now()
	_ = os.Chtimes(path, now, now)
	pruneRuntimes(dir, path)
	return path, nil
}

// pruneRuntimes removes the binaries of dir other than keep that no build
// used for a day.
func pruneRuntimes(dir, keep string) {
	old, _ := filepath.Glob(filepath.Join(dir, "runtime-*"))
	for _, p := range old {
		if fi, err := os.Stat(p); err == nil && p != keep && time.Since(fi.ModTime()) > 24*time.Hour {
			_ = os.Remove(p)
		}
	}
}

func runtimeError(why string) error {
	return fmt.Errorf("sdktest: no runtime binary to run the module: %s\n"+
		"Outside the Breakwater repository, install the runtime at the version of the host the module will run on, and name it:\n"+
		"\tgo install %s@<version>\n"+
		"\texport %s=$(go env GOPATH)/bin/runtime\n"+
		"(or set Options.Runtime)", why, RuntimePackage, RuntimeEnv)
}
