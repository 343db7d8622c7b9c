package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/modulestore"
)

// dryRun is the store's validator: the engine's dry run.
func dryRun(t *testing.T) modulestore.Validator {
	t.Helper()
	eng, err := engine.New(context.Background(), engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CacheDir: filepath.Join(os.TempDir(), "breakwater-engine-test-cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	return func(ctx context.Context, wasm []byte) (modulestore.Info, error) {
		info, err := eng.DryRun(ctx, wasm, engine.Limits{})
		if err != nil {
			return modulestore.Info{}, err
		}
		var kinds []string
		for _, k := range info.Kinds {
			kinds = append(kinds, string(k))
		}
		return modulestore.Info{Kinds: kinds, ABIVersion: info.ABIVersion}, nil
	}
}

func TestModuleUploadValidation(t *testing.T) {
	up := newUpstream(t, always(200))
	e := newEnv(t, "routes:"+routeYAML("plain", up.URL, ""))
	ctx := context.Background()
	st := adminStore(t, e)
	validate := dryRun(t)
	tests := []struct {
		fixture, name, rule string
	}{
		{"not_wasm", "bad-1", "not_wasm"},
		{"forbidden_import", "bad-2", "forbidden_import"},
		{"missing_host_fn", "bad-3", "forbidden_import"},
		{"wrong_abi_version", "bad-4", "abi_version"},
		{"trap", "bad-5", "dry_run"},
		{"infinite_loop", "bad-6", "dry_run"},
		{"retry-constant", "Bad Name", ""},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			_, err := st.Push(ctx, tc.name, wasmFile(t, tc.fixture), nil, validate, "test")
			var re *modulestore.RejectedError
			if !errors.As(err, &re) {
				t.Fatalf("want a rejection, got %v", err)
			}
			if tc.rule != "" {
				var ve *engine.ValidationError
				if !errors.As(err, &ve) || ve.Rule != tc.rule {
					t.Fatalf("want rule %s, got %v", tc.rule, err)
				}
			}
			if _, err := st.Versions(ctx, tc.name); !errors.Is(err, modulestore.ErrNotFound) {
				t.Fatalf("a rejected upload stored something: %v", err)
			}
		})
	}
	m, err := st.Push(ctx, "good", wasmFile(t, "retry-exponential"), nil, validate, "test")
	if err != nil || m.Version != 1 || len(m.Kinds) != 1 || m.Kinds[0] != "retry" || m.ABIVersion != 1 {
		t.Fatalf("good upload: %+v %v", m, err)
	}
	m2, err := st.Push(ctx, "good", wasmFile(t, "retry-status-aware"), nil, validate, "test")
	if err != nil || m2.Version != 2 {
		t.Fatalf("second version: %+v %v", m2, err)
	}
	list, err := st.List(ctx)
	if err != nil || len(list) != 1 || list[0].Version != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if rb, err := st.Rollback(ctx, "good", 0); err != nil || rb.Version != 1 {
		t.Fatalf("rollback: %+v %v", rb, err)
	}
	if _, wasm, err := st.Get(ctx, "good", 0); err != nil || string(wasm) != string(wasmFile(t, "retry-exponential")) {
		t.Fatalf("current after rollback is not v1: %v", err)
	}
	if err := st.Remove(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Get(ctx, "good", 0); !errors.Is(err, modulestore.ErrNotFound) {
		t.Fatalf("after rm: %v", err)
	}
}

// TestHotReloadUnderLoad: while a steady stream needs retry decisions from
// module "policy", new versions are pushed and rolled back; the runtime
// follows within moments and no message fails or is lost.
func TestHotReloadUnderLoad(t *testing.T) {
	up := newUpstream(t, func(id string, call int) int {
		if call == 1 {
			return 503 // every message needs one retry decision
		}
		return 200
	})
	dir := moduleDir(t)
	// modules.dir serves "policy" until the store has it.
	if err := os.WriteFile(filepath.Join(moduleDirPath(dir), "policy.wasm"), wasmFile(t, "retry-status-aware"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, dir+"routes:"+routeYAML("hot", up.URL, `    modules:
      retry:
        name: policy
        config:
          # understood by both versions pushed below
          delay_ms: 1
          initial_ms: 1
          max_ms: 2
`))
	e.run()
	ctx := context.Background()
	validate := dryRun(t)
	const n = 300
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			e.publish("hot", fmt.Sprintf("hr-%d", i), fmt.Sprintf(`{"id":"hr-%d"}`, i))
			time.Sleep(2 * time.Millisecond)
		}
	}()
	steps := []struct {
		do   func() error
		want string
	}{
		{func() error {
			_, err := adminStore(t, e).Push(ctx, "policy", wasmFile(t, "retry-exponential"), nil, validate, "t")
			return err
		}, "v1"},
		{func() error {
			_, err := adminStore(t, e).Push(ctx, "policy", wasmFile(t, "retry-status-aware"), nil, validate, "t")
			return err
		}, "v2"},
		{func() error { _, err := adminStore(t, e).Rollback(ctx, "policy", 0); return err }, "v1"},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "version "+s.want+" in use", func() bool { return e.svc.LoadedModules()["policy"] == s.want })
	}
	wg.Wait()
	for i := range n {
		m := e.outcome(fmt.Sprintf("hr-%d", i))
		if m.Header.Get(headers.Outcome) != headers.OutcomeOK || m.Header.Get(headers.Attempts) != "2" {
			t.Fatalf("hr-%d: %v", i, m.Header)
		}
	}
	if line := e.logLine(`"policy module failed`); line != "" {
		t.Fatalf("a decision failed during the swaps: %s", line)
	}
}

// moduleDirPath extracts the directory from moduleDir's config lines.
func moduleDirPath(cfg string) string {
	rest := strings.TrimPrefix(cfg, "modules:\n  dir: ")
	return rest[:strings.Index(rest, "\n")]
}

func TestSecureMode(t *testing.T) {
	seedA, pubA, err := modulestore.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	seedB, _, _ := modulestore.GenerateKey()
	up := newUpstream(t, always(200))
	e := newEnv(t, fmt.Sprintf("modules:\n  trusted_keys: [%s]\n", pubA)+"routes:"+routeYAML("plain", up.URL, ""))
	ctx := context.Background()
	st := adminStore(t, e)
	if !st.Secure() {
		t.Fatal("trusted_keys set but the store is not in secure mode")
	}
	wasm := wasmFile(t, "retry-exponential")
	validate := dryRun(t)
	sigA, _ := modulestore.Sign(seedA, wasm)
	sigB, _ := modulestore.Sign(seedB, wasm)
	forged, _ := modulestore.Sign(seedA, append([]byte("x"), wasm...))
	tests := []struct {
		name string
		sig  *modulestore.Signature
		want error
	}{
		{"unsigned", nil, modulestore.ErrUnsigned},
		{"untrusted key", sigB, modulestore.ErrUntrustedKey},
		{"signature of other bytes", forged, modulestore.ErrBadSignature},
	}
	for _, tc := range tests {
		if _, err := st.Push(ctx, "signed", wasm, tc.sig, validate, "t"); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := st.Versions(ctx, "signed"); !errors.Is(err, modulestore.ErrNotFound) {
		t.Fatalf("refused uploads stored something: %v", err)
	}
	if _, err := st.Push(ctx, "signed", wasm, sigA, validate, "t"); err != nil {
		t.Fatalf("trusted signature refused: %v", err)
	}
	if _, _, err := st.Get(ctx, "signed", 0); err != nil {
		t.Fatalf("loading the signed module: %v", err)
	}
	// A client without trusted keys of its own is bound by the stored
	// trust policy: its unsigned push is refused too. (Modules written
	// around the checks are refused at load: host/modulestore and
	// host/binding tests.)
	loose, err := modulestore.Open(ctx, e.js, modulestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !loose.Secure() {
		t.Fatal("a client without trusted keys does not see the stored secure mode")
	}
	if _, err := loose.Push(ctx, "sneaky", wasm, nil, validate, "t"); !errors.Is(err, modulestore.ErrUnsigned) {
		t.Fatalf("a client without trusted keys pushed an unsigned module in secure mode: %v", err)
	}
}

// adminStore is the module store as an operator sees it (the test's
// client connection; the runtime's own store is read-only).
func adminStore(t *testing.T, e *env) *modulestore.Store {
	t.Helper()
	st, err := modulestore.Open(context.Background(), e.js, modulestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
