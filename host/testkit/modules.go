package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RepoRoot returns the repository root: the nearest directory above the
// working directory (a test's package directory) holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testkit: no go.mod above the working directory")
		}
		dir = parent
	}
}

// ModulePath returns the path of the committed module name: modules/<name>.wasm,
// else modules/fixtures/<name>.wasm.
func ModulePath(t testing.TB, name string) string {
	t.Helper()
	root := RepoRoot(t)
	for _, dir := range []string{"modules", filepath.Join("modules", "fixtures")} {
		p := filepath.Join(root, dir, name+".wasm")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("testkit: no module %s in modules/ or modules/fixtures/", name)
	return ""
}

// Module returns the bytes of the committed module name (see ModulePath).
func Module(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(ModulePath(t, name))
	if err != nil {
		t.Fatalf("testkit: module %s: %v", name, err)
	}
	return b
}

// ModuleDir copies the committed modules names into a new temporary
// directory (<name>.wasm each) and returns it: a modules.dir.
func ModuleDir(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n+".wasm"), Module(t, n), 0o644); err != nil {
			t.Fatalf("testkit: %v", err)
		}
	}
	return dir
}

// GoBuild builds the Go package pkg (a directory, relative to the working
// directory or absolute) into a file in t.TempDir() and returns its path;
// env adds to the build's environment (GOOS=wasip1 …).
func GoBuild(t testing.TB, pkg string, env []string, flags ...string) string {
	t.Helper()
	abs, err := filepath.Abs(pkg)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(abs))
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testkit: go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// BuildGuest builds a Go policy module from the source in dir (package
// main, as guest-sdk's examples and policies/ hold them) for wasip1 and
// returns its bytes.
func BuildGuest(t testing.TB, dir string) []byte {
	t.Helper()
	p := GoBuild(t, dir, []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS="},
		"-trimpath", "-buildvcs=false", "-buildmode=c-shared")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return b
}
