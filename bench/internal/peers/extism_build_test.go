package peers

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestExtismPluginReproducible rebuilds extism-plugin with build.sh's flags
// and checks the committed retry.wasm is byte for byte what they give.
func TestExtismPluginReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go wasm module")
	}
	out := filepath.Join(t.TempDir(), "retry.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-buildmode=c-shared", "-ldflags=-s", "-o", out, ".")
	cmd.Dir = "extism-plugin"
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ExtismPluginWasm) {
		t.Fatal("extism-plugin/retry.wasm is stale: run extism-plugin/build.sh")
	}
}
