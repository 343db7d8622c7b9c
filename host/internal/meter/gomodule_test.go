package meter

import (
	"os"
	"path/filepath"
	"testing"
)

// TestInstrumentsGoGuests: Go-built guests (1–3 MB, every opcode the Go
// compiler emits) instrument without error; the engine's tests run them.
func TestInstrumentsGoGuests(t *testing.T) {
	paths, _ := filepath.Glob("../../../modules/*.wasm")
	if len(paths) == 0 {
		t.Fatal("no modules in ../../../modules")
	}
	for _, p := range paths {
		wasm, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Instrument(wasm, Options{MaxMemoryPages: 512})
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
			continue
		}
		t.Logf("%s: %d → %d bytes (+%.1f%%)", filepath.Base(p), len(wasm), len(out), 100*float64(len(out)-len(wasm))/float64(len(wasm)))
	}
}
