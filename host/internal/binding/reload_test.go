package binding_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/internal/binding"
)

// TestReloadSwapsVersions: a route following a module is moved to each
// new current version by Reload (a push, a rollback), a pinned route is
// left alone, and both keep deciding throughout.
func TestReloadSwapsVersions(t *testing.T) {
	e := newEnv(t, false)
	e.push("m", wasmFile(t, "retry-constant"))
	bd := e.binder(binding.StoreSource{Store: e.store})
	follow, err := bd.Policy(e.ctx, "r", binding.Ref{Name: "m", Kind: engine.KindRetry})
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := bd.Policy(e.ctx, "p", binding.Ref{Name: "m", Version: "v1", Kind: engine.KindRetry})
	if err != nil {
		t.Fatal(err)
	}
	if err := bd.Reload(e.ctx, "unbound"); err != nil {
		t.Fatalf("Reload of a module no route follows: %v", err)
	}
	steps := []struct {
		name           string
		change         func()
		follow, pinned string
	}{
		{"at start", func() {}, "m@v1", "m@v1"},
		{"after a push", func() { e.push("m", wasmFile(t, "retry-exponential")) }, "m@v2", "m@v1"},
		{"after a rollback", func() {
			if _, err := e.store.Rollback(e.ctx, "m", 1); err != nil {
				t.Fatal(err)
			}
		}, "m@v1", "m@v1"},
		{"after another push", func() { e.push("m", wasmFile(t, "retry-status-aware")) }, "m@v3", "m@v1"},
	}
	for _, s := range steps {
		s.change()
		if err := bd.Reload(e.ctx, "m"); err != nil {
			t.Fatalf("%s: Reload: %v", s.name, err)
		}
		if follow.Module() != s.follow || pinned.Module() != s.pinned {
			t.Fatalf("%s: following route on %s, pinned route on %s; want %s and %s", s.name, follow.Module(), pinned.Module(), s.follow, s.pinned)
		}
		for _, p := range []*binding.Policy{follow, pinned} {
			if err := decide(p); err != nil {
				t.Fatalf("%s: decision on %s: %v", s.name, p.Module(), err)
			}
		}
		if err := bd.Reload(e.ctx, "m"); err != nil || follow.Module() != s.follow {
			t.Fatalf("%s: a second Reload moved the route to %s (%v)", s.name, follow.Module(), err)
		}
	}
}

// TestDirSourceFetch: a module's version is the head of its sha256; a
// pinned version must match; a missing file and secure mode are
// ErrNotFound.
func TestDirSourceFetch(t *testing.T) {
	e := newEnv(t, false)
	dir := t.TempDir()
	wasm := wasmFile(t, "retry-constant")
	if err := os.WriteFile(filepath.Join(dir, "local.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	v := hex.EncodeToString(sum[:])[:12]
	secure := true
	for _, c := range []struct {
		name, module, version string
		secure                *bool
		ok                    bool
	}{
		{"current", "local", "", nil, true},
		{"pinned to its version", "local", v, nil, true},
		{"pinned to another version", "local", "000000000000", nil, false},
		{"missing", "nosuch", "", nil, false},
		{"secure mode", "local", "", &secure, false},
	} {
		src := binding.DirSource{Dir: dir}
		if c.secure != nil {
			src.Secure = func() bool { return *c.secure }
		}
		got, resolved, err := src.Fetch(e.ctx, c.module, c.version)
		if !c.ok {
			if !errors.Is(err, binding.ErrNotFound) {
				t.Errorf("%s: err %v, want ErrNotFound", c.name, err)
			}
			continue
		}
		if err != nil || resolved != v || string(got) != string(wasm) {
			t.Errorf("%s: version %q err %v, want %q", c.name, resolved, err, v)
		}
	}

	// A changed file is a new version: Reload swaps to it.
	bd := e.binder(binding.DirSource{Dir: dir})
	pol, err := bd.Policy(e.ctx, "r", binding.Ref{Name: "local", Kind: engine.KindRetry})
	if err != nil {
		t.Fatal(err)
	}
	if pol.Module() != "local@"+v {
		t.Fatalf("serving %s, want local@%s", pol.Module(), v)
	}
	next := wasmFile(t, "retry-exponential")
	if err := os.WriteFile(filepath.Join(dir, "local.wasm"), next, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := bd.Reload(e.ctx, "local"); err != nil {
		t.Fatal(err)
	}
	sum = sha256.Sum256(next)
	if want := "local@" + hex.EncodeToString(sum[:])[:12]; pol.Module() != want {
		t.Fatalf("after changing the file: serving %s, want %s", pol.Module(), want)
	}
	if err := decide(pol); err != nil {
		t.Fatal(err)
	}
}
