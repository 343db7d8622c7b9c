package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestModuleCheckReportsReservedStubHeaders: `module check` tells the
// author that a stub's Nats-/Bw- headers will be dropped.
func TestModuleCheckReportsReservedStubHeaders(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "client.yaml")
	writeFile(t, cfg, "modules:\n  cache_dir: none\n")
	out, err := runCLI(t, "module", "check", filepath.Join("..", "..", "modules", "fixtures", "stub_reserved_headers.wasm"), "-c", cfg)
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{"ok: ABI v1, kinds stub", `warning: bw_stub sets header "Bw-Outcome"`, `warning: bw_stub sets header "Nats-Msg-Id"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "X-Team") {
		t.Errorf("a header outside the runtime's namespaces was reported:\n%s", out)
	}
}
