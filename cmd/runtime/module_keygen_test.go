package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/host/modulestore"
	"github.com/breakwater-dev/breakwater/host/testkit"
)

// TestKeygenRefusesToOverwrite: keygen never replaces an existing seed
// file without --force, and writes seeds with mode 0600.
func TestKeygenRefusesToOverwrite(t *testing.T) {
	seed := filepath.Join(t.TempDir(), "ops.seed")
	out, err := runCLI(t, "module", "keygen", "--out", seed)
	if err != nil || !strings.HasPrefix(out, "U") {
		t.Fatalf("keygen: %q %v", out, err)
	}
	first, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(seed); fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file mode %v, want 0600", fi.Mode().Perm())
	}
	// The attack: a second keygen to the same file (a typo, a script run
	// twice) would destroy the key modules are signed with.
	out, err = runCLI(t, "module", "keygen", "--out", seed)
	if err == nil {
		t.Fatalf("keygen overwrote %s without --force: %q", seed, out)
	}
	if !strings.Contains(err.Error(), seed) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("error should name the file and the flag: %v", err)
	}
	if b, _ := os.ReadFile(seed); string(b) != string(first) {
		t.Fatal("the refused keygen changed the seed file")
	}
	// --force replaces it, and tightens a loose mode.
	if err := os.Chmod(seed, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "module", "keygen", "--out", seed, "--force"); err != nil || !strings.HasPrefix(out, "U") {
		t.Fatalf("keygen --force: %q %v", out, err)
	}
	second, _ := os.ReadFile(seed)
	if string(second) == string(first) {
		t.Fatal("keygen --force did not write a new seed")
	}
	if fi, _ := os.Stat(seed); fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file mode after --force %v, want 0600", fi.Mode().Perm())
	}
	if _, err := modulestore.Sign(second[:len(second)-1], []byte("x")); err != nil {
		t.Fatalf("the new seed does not sign: %v", err)
	}
}

// TestModuleTrustCommands: the trust policy set with `module trust` binds
// a CLI whose config trusts nothing: it cannot push an unsigned module;
// the last key goes only with --force.
func TestModuleTrustCommands(t *testing.T) {
	dir := t.TempDir()
	srv := testkit.JetStream(t)
	cli := filepath.Join(dir, "cli.yaml")
	writeFile(t, cli, "nats:\n  url: "+srv.URL+"\nmodules:\n  cache_dir: none\n")
	seed := filepath.Join(dir, "ops.seed")
	pub, err := runCLI(t, "module", "keygen", "--out", seed)
	if err != nil {
		t.Fatal(err)
	}
	pub = strings.TrimSpace(pub)
	steps := []struct {
		args []string
		want []string
		fail string // fragment of the error; "" = must succeed
	}{
		{[]string{"module", "trust", "list"}, []string{"secure mode is off"}, ""},
		{[]string{"module", "trust", "add", "not-a-key"}, nil, "not an nkey"},
		{[]string{"module", "trust", "add", pub}, []string{"secure mode", pub}, ""},
		{[]string{"module", "push", "../../modules/retry-constant.wasm", "--name", "p"}, nil, "not signed"},
		{[]string{"module", "push", "../../modules/retry-constant.wasm", "--name", "p", "--sign-key", seed}, []string{"pushed p v1", "current now"}, ""},
		{[]string{"module", "list"}, []string{"p", "v1", pub}, ""},
		{[]string{"module", "trust", "rm", pub}, nil, "--force"},
		{[]string{"module", "push", "../../modules/retry-constant.wasm", "--name", "p"}, nil, "not signed"},
		{[]string{"module", "trust", "rm", pub, "--force"}, []string{"secure mode is off"}, ""},
		{[]string{"module", "push", "../../modules/retry-constant.wasm", "--name", "p"}, []string{"pushed p v2"}, ""},
	}
	for _, s := range steps {
		out, err := runCLI(t, append(s.args, "--config", cli)...)
		if s.fail == "" && err != nil {
			t.Fatalf("%v: %v (output %q)", s.args, err, out)
		}
		if s.fail != "" && (err == nil || !strings.Contains(err.Error(), s.fail)) {
			t.Fatalf("%v: want an error containing %q, got %v (output %q)", s.args, s.fail, err, out)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Fatalf("%v: output %q lacks %q", s.args, out, w)
			}
		}
	}
}
