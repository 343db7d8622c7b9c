package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// repoRoot is the directory holding go.work (the bench runs from the
// repository root or from bench/).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above the working directory: run the bench from the repository")
		}
		dir = parent
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// runtimeBinary builds cmd/runtime once per bench run.
func runtimeBinary(ctx context.Context) (string, error) {
	buildOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "bw-bench-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "runtime")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/runtime")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building cmd/runtime: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// proc is a runtime started as a child process, as in production.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
}

// againstRev, when set (--against), is the short commit of the revision
// whose runtime the async success scenarios run beside the current tree's
// (system "breakwater@<againstRev>").
var againstRev string

// resolveRev returns the short commit of rev in the repository.
func resolveRev(rev string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("git", "rev-parse", "--verify", "--quiet", "--short", rev+"^{commit}")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%q is not a commit of the repository at %s", rev, root)
	}
	return strings.TrimSpace(string(out)), nil
}

var (
	revOnce    sync.Once
	revBinPath string
	revErr     error
)

// revBinary builds cmd/runtime from againstRev once per bench run: the
// revision is checked out in a temporary `git worktree` (detached, outside
// the repository), built there with that revision's go.mod and go.work,
// and the worktree removed again (the binary is kept in a temporary
// directory).
func revBinary(ctx context.Context) (string, error) {
	revOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			revErr = err
			return
		}
		dir, err := os.MkdirTemp("", "bw-bench-rev-")
		if err != nil {
			revErr = err
			return
		}
		src := filepath.Join(dir, "src")
		git := func(args ...string) error {
			cmd := exec.CommandContext(ctx, "git", args...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return nil
		}
		if revErr = git("worktree", "add", "--detach", "--quiet", src, againstRev); revErr != nil {
			return
		}
		defer func() {
			// context.Background: remove it even when the run was interrupted.
			cmd := exec.Command("git", "worktree", "remove", "--force", src)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "bench: removing the worktree %s: %v\n%s", src, err, out)
			}
		}()
		revBinPath = filepath.Join(dir, "runtime")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", revBinPath, "./cmd/runtime")
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			revErr = fmt.Errorf("building cmd/runtime at %s: %v\n%s", againstRev, err, out)
		}
	})
	return revBinPath, revErr
}

// startRuntime starts `runtime serve --config cfg` (the current tree's
// runtime) and waits (bounded) until it logs that it runs.
func startRuntime(ctx context.Context, cfg string) (*proc, error) {
	bin, err := runtimeBinary(ctx)
	if err != nil {
		return nil, err
	}
	return startRuntimeBin(ctx, bin, cfg)
}

// startRuntimeBin is startRuntime with the runtime binary bin.
func startRuntimeBin(ctx context.Context, bin, cfg string) (*proc, error) {
	p := &proc{cmd: exec.Command(bin, "serve", "--config", cfg)}
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	running := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			if p.stderr.Len() < 1<<20 {
				p.stderr.WriteString(line + "\n")
			}
			p.mu.Unlock()
			if strings.Contains(line, `"msg":"breakwater running"`) {
				once.Do(func() { close(running) })
			}
		}
	}()
	select {
	case <-running:
		return p, nil
	case <-time.After(60 * time.Second):
		p.kill()
		return nil, fmt.Errorf("runtime not running within 60s:\n%s", p.logs())
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// kill sends SIGKILL, as a crash would, and reaps the process.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// rssBytes is the process's resident set size.
func (p *proc) rssBytes() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", p.cmd.Process.Pid)
}
