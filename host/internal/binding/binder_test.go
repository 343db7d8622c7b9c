package binding_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/internal/binding"
	"github.com/breakwater-dev/breakwater/host/modulestore"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// logBuf collects JSON log lines; safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// line returns the first log line holding every fragment ("" if none).
func (l *logBuf) line(frags ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range strings.Split(l.b.String(), "\n") {
		ok := true
		for _, f := range frags {
			ok = ok && strings.Contains(ln, f)
		}
		if ok && ln != "" {
			return ln
		}
	}
	return ""
}

type env struct {
	t     *testing.T
	ctx   context.Context
	js    jetstream.JetStream
	store *modulestore.Store
	eng   *engine.Engine
	logs  *logBuf
	log   *slog.Logger
	seed  []byte
}

// newEnv starts a real nats-server with JetStream on a random loopback
// port, a module store in secure mode (one trusted key) and an engine.
func newEnv(t *testing.T, secure bool) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	_, js := testkit.JetStream(t).Connect(t)
	e := &env{t: t, ctx: ctx, js: js, logs: &logBuf{}}
	var err error
	e.log = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var keys []string
	if secure {
		seed, pub, err := modulestore.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		e.seed, keys = seed, []string{pub}
	}
	if e.store, err = modulestore.Open(ctx, js, modulestore.Options{TrustedKeys: keys}); err != nil {
		t.Fatal(err)
	}
	if e.eng, err = engine.New(ctx, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PoolSize: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.eng.Close(context.Background()) })
	return e
}

func (e *env) binder(src binding.Source) *binding.Binder {
	bd := binding.New(e.eng, src, binding.Options{Log: e.log})
	e.t.Cleanup(func() { bd.Close(context.Background()) })
	return bd
}

func wasmFile(t *testing.T, name string) []byte {
	t.Helper()
	return testkit.Module(t, name)
}

func (e *env) validate(ctx context.Context, wasm []byte) (modulestore.Info, error) {
	info, err := e.eng.DryRun(ctx, wasm, engine.Limits{})
	if err != nil {
		return modulestore.Info{}, err
	}
	kinds := make([]string, len(info.Kinds))
	for i, k := range info.Kinds {
		kinds[i] = string(k)
	}
	return modulestore.Info{Kinds: kinds, ABIVersion: info.ABIVersion}, nil
}

// push stores wasm through the store's checks, signed when secure.
func (e *env) push(name string, wasm []byte) *modulestore.Meta {
	e.t.Helper()
	var sig *modulestore.Signature
	if e.seed != nil {
		var err error
		if sig, err = modulestore.Sign(e.seed, wasm); err != nil {
			e.t.Fatal(err)
		}
	}
	m, err := e.store.Push(e.ctx, name, wasm, sig, e.validate, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// forge writes version v of name straight into JetStream, around every
// check (what an attacker with write access to the buckets, or a bit rot,
// does), and makes it current. stored is what the object holds; sum is the
// sha256 recorded; sig, if set, the recorded signature.
func (e *env) forge(name string, v int, stored []byte, sum string, sig *modulestore.Signature) {
	e.t.Helper()
	obj, err := e.js.ObjectStore(e.ctx, topology.BucketModules)
	if err != nil {
		e.t.Fatal(err)
	}
	md := map[string]string{"sha256": sum, "kinds": "retry", "abi_version": "1"}
	if sig != nil {
		md["signer"], md["signature"] = sig.PublicKey, base64.StdEncoding.EncodeToString(sig.Sig)
	}
	if _, err := obj.Put(e.ctx, jetstream.ObjectMeta{Name: name + "/v" + strconv.Itoa(v), Metadata: md}, bytes.NewReader(stored)); err != nil {
		e.t.Fatal(err)
	}
	kv, err := e.js.KeyValue(e.ctx, modulestore.MetaBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := kv.Put(e.ctx, "current."+name, []byte(strconv.Itoa(v))); err != nil {
		e.t.Fatal(err)
	}
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func decide(p *binding.Policy) error {
	var d abi.RetryDecision
	_, err := p.Call(context.Background(), engine.SampleInput(), &d)
	return err
}

// TestUnusableCurrentServesOlderVersion: in secure mode, a current version
// that is unsigned, corrupt, or signed but not loadable is not served: the
// newest older version that verifies and loads is, loudly logged, and the
// binder never fails. A later good push is picked up by Reload.
func TestUnusableCurrentServesOlderVersion(t *testing.T) {
	e := newEnv(t, true)
	good := wasmFile(t, "retry-constant")
	if m := e.push("m", good); m.Version != 1 {
		t.Fatalf("v%d", m.Version)
	}
	// v2: unsigned, written around the checks.
	unsigned := wasmFile(t, "retry-status-aware")
	e.forge("m", 2, unsigned, shaOf(unsigned), nil)

	bd := e.binder(binding.StoreSource{Store: e.store})
	pol, err := bd.Policy(e.ctx, "r", binding.Ref{Name: "m", Kind: engine.KindRetry})
	if err != nil {
		t.Fatalf("RetryPolicy failed (the runtime would refuse to start): %v", err)
	}
	if got := bd.Loaded()["m"]; got != "v1" {
		t.Fatalf("serving %q, want v1", got)
	}
	if err := decide(pol); err != nil {
		t.Fatalf("decision on v1: %v", err)
	}
	if e.logs.line(`"level":"ERROR"`, `"module":"m"`, `"bad_version":"v2"`, `"serving":"v1"`, "not signed") == "" {
		t.Fatalf("no loud log line naming module, bad version, reason and what is served:\n%s", e.logs.b.String())
	}

	// v3: signed, but the stored bytes were changed (sha256 mismatch).
	sig3, _ := modulestore.Sign(e.seed, good)
	tampered := append(bytes.Clone(good), 0x00, 0x01, 0x00)
	e.forge("m", 3, tampered, shaOf(good), sig3)
	// v4: signed and intact, but not a loadable module.
	junk := wasmFile(t, "not_wasm")
	sig4, _ := modulestore.Sign(e.seed, junk)
	e.forge("m", 4, junk, shaOf(junk), sig4)
	{
		bad := "v4"
		if err := bd.Reload(e.ctx, "m"); err != nil {
			t.Fatalf("reload with bad %s: %v", bad, err)
		}
		if got := bd.Loaded()["m"]; got != "v1" {
			t.Fatalf("bad %s current: serving %q, want v1", bad, got)
		}
		if e.logs.line(`"bad_version":"`+bad+`"`, `"serving":"v1"`) == "" {
			t.Fatalf("no log line for bad %s", bad)
		}
	}
	if e.logs.line(`"version":"v3"`, "sha256") == "" {
		t.Fatalf("the corrupt v3 was not reported while looking for an older version")
	}
	// With the current pointer on the corrupt v3.
	kv, _ := e.js.KeyValue(e.ctx, modulestore.MetaBucket)
	if _, err := kv.Put(e.ctx, "current.m", []byte("3")); err != nil {
		t.Fatal(err)
	}
	if err := bd.Reload(e.ctx, "m"); err != nil || bd.Loaded()["m"] != "v1" {
		t.Fatalf("bad v3 current: serving %q (%v)", bd.Loaded()["m"], err)
	}
	if e.logs.line(`"bad_version":"v3"`, `"serving":"v1"`, "sha256") == "" {
		t.Fatal("no log line for the corrupt v3")
	}
	// A good push (v5: the counter skips the forged objects) is served.
	if m := e.push("m", wasmFile(t, "retry-exponential")); m.Version != 5 {
		t.Fatalf("push after forged versions: v%d", m.Version)
	}
	if err := bd.Reload(e.ctx, "m"); err != nil {
		t.Fatal(err)
	}
	if got := bd.Loaded()["m"]; got != "v5" {
		t.Fatalf("after a good push: serving %q, want v5", got)
	}
	if err := decide(pol); err != nil {
		t.Fatalf("decision on v5: %v", err)
	}
}

// TestNoUsableVersion: when no version verifies and loads, the binder
// still returns policies (other routes start), their calls fail with
// ErrNoUsableVersion (so the pipeline decides natively), and a later
// Reload that finds a good version serves it.
func TestNoUsableVersion(t *testing.T) {
	e := newEnv(t, true)
	unsigned := wasmFile(t, "retry-constant")
	e.forge("lost", 1, unsigned, shaOf(unsigned), nil)
	e.push("fine", wasmFile(t, "retry-exponential"))

	bd := e.binder(binding.StoreSource{Store: e.store})
	pol, err := bd.Policy(e.ctx, "a", binding.Ref{Name: "lost", Kind: engine.KindRetry})
	if err != nil {
		t.Fatalf("RetryPolicy: %v", err)
	}
	if _, err := bd.Policy(e.ctx, "b", binding.Ref{Name: "lost", Kind: engine.KindStub}); err != nil {
		t.Fatalf("StubPolicy: %v", err)
	}
	if _, err := bd.Policy(e.ctx, "c", binding.Ref{Name: "lost", Kind: engine.KindFallback}); err != nil {
		t.Fatalf("FallbackPolicy: %v", err)
	}
	// A pinned version that does not verify: a policy too.
	pinned, err := bd.Policy(e.ctx, "d", binding.Ref{Name: "lost", Version: "v1", Kind: engine.KindRetry})
	if err != nil {
		t.Fatalf("pinned RetryPolicy: %v", err)
	}
	// Another route's module is not affected.
	other, err := bd.Policy(e.ctx, "e", binding.Ref{Name: "fine", Kind: engine.KindRetry})
	if err != nil {
		t.Fatal(err)
	}
	if err := decide(other); err != nil {
		t.Fatalf("the other route's module: %v", err)
	}
	// A module that does not export the kind a route needs: a policy too,
	// whose calls fail with the typed error.
	wrongKind, err := bd.Policy(e.ctx, "g", binding.Ref{Name: "fine", Kind: engine.KindStub})
	if err != nil {
		t.Fatalf("StubPolicy of a retry-only module: %v", err)
	}
	var stub abi.Stub
	if _, err := wrongKind.Call(e.ctx, engine.SampleInput(), &stub); !errors.Is(err, binding.ErrNoUsableVersion) || !strings.Contains(err.Error(), "bw_stub") {
		t.Fatalf("stub call on a retry-only module: %v", err)
	}
	for _, p := range []*binding.Policy{pol, pinned} {
		err := decide(p)
		if !errors.Is(err, binding.ErrNoUsableVersion) || !errors.Is(err, modulestore.ErrUnsigned) || !strings.Contains(err.Error(), "lost") {
			t.Fatalf("call with no usable version: want ErrNoUsableVersion wrapping the reason, got %v", err)
		}
	}
	if _, ok := bd.Loaded()["lost"]; ok {
		t.Fatal("Loaded lists a module with no usable version")
	}
	if e.logs.line(`"level":"ERROR"`, `"module":"lost"`, `"bad_version":"v1"`, `"serving":"native policy"`) == "" {
		t.Fatalf("no loud log line:\n%s", e.logs.b.String())
	}
	// An unknown module is still a configuration error.
	if _, err := bd.Policy(e.ctx, "f", binding.Ref{Name: "nosuch", Kind: engine.KindRetry}); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("unknown module: %v", err)
	}
	// A good version is pushed: Reload serves it.
	if m := e.push("lost", wasmFile(t, "retry-constant")); m.Version != 2 {
		t.Fatalf("v%d", m.Version)
	}
	if err := bd.Reload(e.ctx, "lost"); err != nil {
		t.Fatal(err)
	}
	if err := decide(pol); err != nil || bd.Loaded()["lost"] != "v2" {
		t.Fatalf("after a good push: %v (loaded %v)", err, bd.Loaded())
	}
}

// TestDirSource: modules.dir serves modules the store does not know, and
// is not used while the stored policy is in secure mode.
func TestDirSource(t *testing.T) {
	e := newEnv(t, false)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "local.wasm"), wasmFile(t, "retry-constant"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := binding.Sources{binding.StoreSource{Store: e.store}, binding.DirSource{Dir: dir, Secure: e.store.Secure}}
	bd := e.binder(src)
	pol, err := bd.Policy(e.ctx, "r", binding.Ref{Name: "local", Kind: engine.KindRetry})
	if err != nil {
		t.Fatal(err)
	}
	if err := decide(pol); err != nil {
		t.Fatal(err)
	}
	if v := bd.Loaded()["local"]; len(v) != 12 {
		t.Fatalf("dir version %q", v)
	}
	// Secure mode turned on by another client: the directory is refused.
	_, pub, _ := modulestore.GenerateKey()
	if _, err := e.store.TrustKey(e.ctx, pub); err != nil {
		t.Fatal(err)
	}
	bd2 := e.binder(src)
	if _, err := bd2.Policy(e.ctx, "r", binding.Ref{Name: "local", Kind: engine.KindRetry}); !errors.Is(err, binding.ErrNotFound) || !strings.Contains(err.Error(), "secure mode") {
		t.Fatalf("dir module in secure mode: %v", err)
	}
}
