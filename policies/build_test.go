package policies_test

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// policyModules are the Go-built modules of this directory.
var policyModules = []string{"retry-exponential", "retry-status-aware", "fallback-cache-then-stub", "stub-template", "classify-json-error"}

// TestModulesUpToDate rebuilds every policy with the flags of build.sh and
// checks that the committed modules/<name>.wasm is byte-for-byte the same:
// the builds are reproducible, and the committed binaries are what the
// sources say. A failure after a change of the SDK, a policy or the Go
// version means: run policies/build.sh and commit the modules.
func TestModulesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds the modules: skipped in -short mode")
	}
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go tool is not installed (%v): cannot rebuild the modules", err)
	}
	// The bytes depend on the Go version: modules/BUILT_WITH names the one
	// build.sh used (go.mod names the lowest the project needs, which may
	// be older).
	b, err := os.ReadFile(filepath.Join(modulesDir, "BUILT_WITH"))
	if err != nil {
		t.Fatalf("%v (run policies/build.sh)", err)
	}
	want := strings.TrimSpace(string(b))
	out, err := exec.Command(gotool, "env", "GOVERSION").Output()
	if err != nil {
		t.Fatalf("go env GOVERSION: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Skipf("the modules are built with %s (modules/BUILT_WITH); the go tool here is %s: not comparing", want, got)
	}
	dir := t.TempDir()
	for _, name := range policyModules {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, name+".wasm")
			cmd := exec.Command(gotool, "build", "-trimpath", "-buildvcs=false", "-buildmode=c-shared", "-ldflags=-s", "-o", out, "./"+name)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=")
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, msg)
			}
			fresh, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			committed, err := os.ReadFile(filepath.Join(modulesDir, name+".wasm"))
			if err != nil {
				t.Fatalf("%v (run policies/build.sh)", err)
			}
			if !bytes.Equal(fresh, committed) {
				t.Errorf("modules/%s.wasm (sha256 %x) differs from a fresh build (sha256 %x): run policies/build.sh",
					name, sha256.Sum256(committed), sha256.Sum256(fresh))
			}
		})
	}
}
