package modulestore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/modulestore"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// startServer starts a real nats-server with JetStream on a random
// loopback port and returns its URL.
func startServer(t *testing.T) string {
	t.Helper()
	return testkit.JetStream(t).URL
}

// client is one client process: its own connection and JetStream context.
func client(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	_, js := testkit.Connect(t, url)
	return js
}

func open(t *testing.T, js jetstream.JetStream, keys ...string) *modulestore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := modulestore.Open(ctx, js, modulestore.Options{TrustedKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func wasmFile(t *testing.T, name string) []byte {
	t.Helper()
	return testkit.Module(t, name)
}

// variant appends a custom section to wasm: a valid module with other
// bytes (another sha256), so every push in a test is distinguishable.
func variant(wasm []byte, tag string) []byte {
	payload := append([]byte{byte(len("bwtest"))}, "bwtest"+tag...)
	out := append(bytes.Clone(wasm), 0x00, byte(len(payload)))
	return append(out, payload...)
}

// dryRun is the engine's real validation.
func dryRun(t *testing.T) modulestore.Validator {
	t.Helper()
	eng, err := engine.New(context.Background(), engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close(context.Background()) })
	return func(ctx context.Context, wasm []byte) (modulestore.Info, error) {
		info, err := eng.DryRun(ctx, wasm, engine.Limits{})
		if err != nil {
			return modulestore.Info{}, err
		}
		kinds := make([]string, len(info.Kinds))
		for i, k := range info.Kinds {
			kinds[i] = string(k)
		}
		return modulestore.Info{Kinds: kinds, ABIVersion: info.ABIVersion}, nil
	}
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestConcurrentPushes: ten clients push the same name at once, each
// other bytes. Every push that reports success owns a distinct version
// whose stored sha256 is its own; the others fail with a typed conflict;
// nothing is overwritten and the current pointer names a stored version.
func TestConcurrentPushes(t *testing.T) {
	url := startServer(t)
	validate := dryRun(t)
	base := wasmFile(t, "retry-constant")
	const n = 10
	for trial := range 3 {
		name := fmt.Sprintf("race-%d", trial)
		stores := make([]*modulestore.Store, n)
		for i := range stores {
			stores[i] = open(t, client(t, url))
		}
		type result struct {
			meta *modulestore.Meta
			sha  string
			err  error
		}
		results := make([]result, n)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wasm := variant(base, fmt.Sprintf("%d-%d", trial, i))
			results[i].sha = shaOf(wasm)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i].meta, results[i].err = stores[i].Push(ctx, name, wasm, nil, validate, fmt.Sprintf("client-%d", i))
			}()
		}
		close(start)
		wg.Wait()
		versions, err := stores[0].Versions(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		stored := map[int]*modulestore.Meta{}
		for _, m := range versions {
			stored[m.Version] = m
		}
		seen := map[int]int{}
		ok := 0
		for i, r := range results {
			if r.err != nil {
				if !errors.Is(r.err, modulestore.ErrConflict) {
					t.Fatalf("trial %d push %d: want success or ErrConflict, got %v", trial, i, r.err)
				}
				continue
			}
			ok++
			if j, dup := seen[r.meta.Version]; dup {
				t.Fatalf("trial %d: pushes %d and %d both report version %d", trial, j, i, r.meta.Version)
			}
			seen[r.meta.Version] = i
			m := stored[r.meta.Version]
			if m == nil || m.SHA256 != r.sha {
				t.Fatalf("trial %d push %d: reported v%d (sha %s) but the store holds %+v: overwritten or lost", trial, i, r.meta.Version, r.sha[:12], m)
			}
			// The bytes too, not only the metadata.
			if _, wasm, err := stores[0].Get(ctx, name, r.meta.Version); err != nil || shaOf(wasm) != r.sha {
				t.Fatalf("trial %d push %d: v%d reads back wrong: %v", trial, i, r.meta.Version, err)
			}
		}
		if ok == 0 || len(versions) != ok {
			t.Fatalf("trial %d: %d successful pushes, %d versions stored", trial, ok, len(versions))
		}
		cur, err := stores[0].Current(ctx, name)
		if err != nil || stored[cur] == nil {
			t.Fatalf("trial %d: current pointer v%d names no stored version (%v)", trial, cur, err)
		}
		// The newest pushed version wins the pointer.
		if cur != versions[len(versions)-1].Version {
			t.Fatalf("trial %d: current v%d, newest v%d", trial, cur, versions[len(versions)-1].Version)
		}
		t.Logf("trial %d: %d pushes succeeded, versions %v, current v%d", trial, ok, seen, cur)
		cancel()
	}
}

// TestPushNeverOverwrites: a version object written around the counter
// (a client of an older release) is skipped, not overwritten.
func TestPushNeverOverwrites(t *testing.T) {
	url := startServer(t)
	js := client(t, url)
	st := open(t, js)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	validate := dryRun(t)
	v1 := variant(wasmFile(t, "retry-constant"), "one")
	if m, err := st.Push(ctx, "legacy", v1, nil, validate, "t"); err != nil || m.Version != 1 {
		t.Fatalf("%+v %v", m, err)
	}
	// An older client writes v2 straight into the object store.
	obj, err := js.ObjectStore(ctx, topology.BucketModules)
	if err != nil {
		t.Fatal(err)
	}
	sneaky := variant(wasmFile(t, "retry-constant"), "two")
	if _, err := obj.Put(ctx, jetstream.ObjectMeta{Name: "legacy/v2", Metadata: map[string]string{"sha256": shaOf(sneaky)}}, bytes.NewReader(sneaky)); err != nil {
		t.Fatal(err)
	}
	v3 := variant(wasmFile(t, "retry-constant"), "three")
	m, err := st.Push(ctx, "legacy", v3, nil, validate, "t")
	if err != nil || m.Version != 3 {
		t.Fatalf("want v3 after the foreign v2, got %+v %v", m, err)
	}
	if _, wasm, err := st.Get(ctx, "legacy", 2); err != nil || shaOf(wasm) != shaOf(sneaky) {
		t.Fatalf("v2 was overwritten: %v", err)
	}
}

// TestStoredTrustPolicy: the trust policy lives in JetStream, so a client
// with no trusted keys of its own cannot push, or roll back to, an
// unsigned module once another client has set trusted keys.
func TestStoredTrustPolicy(t *testing.T) {
	url := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	validate := dryRun(t)
	seedA, pubA, _ := modulestore.GenerateKey()
	_, pubB, _ := modulestore.GenerateKey()
	wasm := wasmFile(t, "retry-exponential")
	sigA, _ := modulestore.Sign(seedA, wasm)

	// Before any key is trusted, a loose client stores an unsigned v1.
	loose := open(t, client(t, url))
	if loose.Secure() {
		t.Fatal("no keys anywhere, yet secure")
	}
	if m, err := loose.Push(ctx, "p", wasm, nil, validate, "loose"); err != nil || m.Version != 1 {
		t.Fatalf("unsigned push before secure mode: %+v %v", m, err)
	}
	// An admin client trusts key A: secure mode for everyone.
	admin := open(t, client(t, url), pubA)
	if !admin.Secure() || !loose.Secure() {
		t.Fatalf("secure: admin %v, loose %v: the loose client must see the stored policy", admin.Secure(), loose.Secure())
	}
	if _, err := loose.Push(ctx, "p", wasm, nil, validate, "loose"); !errors.Is(err, modulestore.ErrUnsigned) {
		t.Fatalf("loose client pushing unsigned in secure mode: want ErrUnsigned, got %v", err)
	}
	if vs, _ := loose.Versions(ctx, "p"); len(vs) != 1 {
		t.Fatalf("a refused push stored something: %d versions", len(vs))
	}
	m, err := loose.Push(ctx, "p", wasm, sigA, validate, "loose")
	if err != nil || m.Version != 2 || !m.Current {
		t.Fatalf("signed push: %+v %v", m, err)
	}
	// Rollback to the unsigned v1 is refused, by any client; v2 stays.
	for _, st := range []*modulestore.Store{loose, admin} {
		if _, err := st.Rollback(ctx, "p", 0); !errors.Is(err, modulestore.ErrUnsigned) {
			t.Fatalf("rollback to an unsigned version: want ErrUnsigned, got %v", err)
		}
	}
	if cur, err := loose.Current(ctx, "p"); err != nil || cur != 2 {
		t.Fatalf("current after refused rollbacks: v%d %v", cur, err)
	}
	if _, _, err := loose.Get(ctx, "p", 1); !errors.Is(err, modulestore.ErrUnsigned) {
		t.Fatalf("loose client loading unsigned v1: %v", err)
	}

	// Opening with other keys adds them; it never removes any.
	other := open(t, client(t, url), pubB)
	pol, err := other.Policy(ctx)
	if err != nil || len(pol.Keys) != 2 {
		t.Fatalf("policy after merging B: %+v %v", pol, err)
	}
	// Removing keys is explicit; the last one only with force.
	if _, err := loose.UntrustKey(ctx, pubB, false); err != nil {
		t.Fatal(err)
	}
	if _, err := loose.UntrustKey(ctx, pubB, false); !errors.Is(err, modulestore.ErrNotTrusted) {
		t.Fatalf("removing an untrusted key: %v", err)
	}
	if _, err := loose.UntrustKey(ctx, pubA, false); !errors.Is(err, modulestore.ErrLastTrustedKey) {
		t.Fatalf("removing the last key without force: %v", err)
	}
	if !loose.Secure() {
		t.Fatal("secure mode turned off without force")
	}
	if _, err := loose.TrustKey(ctx, "not-a-key"); err == nil {
		t.Fatal("trusted a key that is not an nkey")
	}
	if _, err := loose.UntrustKey(ctx, pubA, true); err != nil {
		t.Fatal(err)
	}
	if loose.Secure() || admin.Secure() {
		t.Fatal("secure after removing the last key with force")
	}
	if _, err := loose.Rollback(ctx, "p", 0); err != nil {
		t.Fatalf("rollback with secure mode off: %v", err)
	}
}

// TestCorruptTrustPolicyFailsClosed: a trust policy that cannot be read
// refuses pushes and loads until an admin stores a new one.
func TestCorruptTrustPolicyFailsClosed(t *testing.T) {
	url := startServer(t)
	js := client(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seed, pub, _ := modulestore.GenerateKey()
	st := open(t, js, pub)
	validate := dryRun(t)
	wasm := wasmFile(t, "retry-constant")
	sig, _ := modulestore.Sign(seed, wasm)
	if _, err := st.Push(ctx, "c", wasm, sig, validate, "t"); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, modulestore.MetaBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "trust", []byte("{garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Push(ctx, "c", wasm, nil, validate, "t"); !errors.Is(err, modulestore.ErrCorruptPolicy) {
		t.Fatalf("push under a corrupt policy: %v", err)
	}
	if _, _, err := st.Get(ctx, "c", 0); !errors.Is(err, modulestore.ErrCorruptPolicy) {
		t.Fatalf("get under a corrupt policy: %v", err)
	}
	if _, err := st.TrustKey(ctx, pub); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Get(ctx, "c", 0); err != nil {
		t.Fatalf("after repair: %v", err)
	}
}

// TestWatchFollowsCurrentPointer: Watch names a module on push, rollback
// and remove.
func TestWatchFollowsCurrentPointer(t *testing.T) {
	url := startServer(t)
	st := open(t, client(t, url))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if l, err := st.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("list of an empty store: %v %v", l, err)
	}
	ch, err := st.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	validate := dryRun(t)
	expect := func(what string) {
		t.Helper()
		select {
		case name := <-ch:
			if name != "w" {
				t.Fatalf("%s: watch sent %q", what, name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: watch sent nothing within 10s", what)
		}
	}
	for i := range 2 {
		if _, err := st.Push(ctx, "w", variant(wasmFile(t, "retry-constant"), fmt.Sprint(i)), nil, validate, "t"); err != nil {
			t.Fatal(err)
		}
		expect("push")
	}
	if _, err := st.Rollback(ctx, "w", 0); err != nil {
		t.Fatal(err)
	}
	expect("rollback")
	if err := st.Remove(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	expect("remove")
	if _, _, err := st.Get(ctx, "w", 0); !errors.Is(err, modulestore.ErrNotFound) {
		t.Fatalf("after remove: %v", err)
	}
	// A later push does not reuse a version number.
	m, err := st.Push(ctx, "w", wasmFile(t, "retry-constant"), nil, validate, "t")
	if err != nil || m.Version != 3 {
		t.Fatalf("push after remove: %+v %v", m, err)
	}
	expect("push after remove")
}
