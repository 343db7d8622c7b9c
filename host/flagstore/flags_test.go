package flagstore_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/flagstore"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// bucket starts a server with the topology and returns its JetStream and
// bw_flags bucket.
func bucket(t *testing.T) (jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	_, js := testkit.JetStream(t).Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := topology.Ensure(ctx, js, topology.Options{Replicas: 1, DuplicateWindow: time.Minute}); err != nil {
		t.Fatal(err)
	}
	kv, err := flagstore.Bucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	return js, kv
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		key, value string
		ok         bool
	}{
		{"orders.enabled", "false", true},
		{"orders.enabled", "true", true},
		{"target.pay-api.enabled", "false", true},
		{"global.region", "eu", true},
		{"orders.region", "", true},
		{"orders.enabled", "off", false},
		{"orders.enabled", "", false},
		{"orders", "x", false},         // one token
		{"orders.", "x", false},        // empty token
		{".orders.x", "x", false},      // empty token
		{"orders.*", "x", false},       // wildcard
		{"orders.>", "x", false},       // wildcard
		{"orders.re gion", "x", false}, // space
		{"", "x", false},
	} {
		err := flagstore.Check(c.key, c.value)
		if (err == nil) != c.ok {
			t.Errorf("Check(%q, %q) = %v, want ok %v", c.key, c.value, err, c.ok)
		}
	}
}

// TestSetGetDeleteList: the operator functions against a real bucket,
// bad input refused before it is stored.
func TestSetGetDeleteList(t *testing.T) {
	_, kv := bucket(t)
	ctx := context.Background()
	if _, err := flagstore.Get(ctx, kv, "orders.enabled"); !errors.Is(err, flagstore.ErrNotFound) {
		t.Fatalf("Get of an unset flag: %v, want ErrNotFound", err)
	}
	if err := flagstore.Delete(ctx, kv, "orders.enabled"); !errors.Is(err, flagstore.ErrNotFound) {
		t.Fatalf("Delete of an unset flag: %v, want ErrNotFound", err)
	}
	for _, bad := range [][2]string{{"orders.enabled", "off"}, {"orders", "x"}, {"a.b c", "x"}} {
		if err := flagstore.Set(ctx, kv, bad[0], bad[1]); err == nil {
			t.Errorf("Set(%q, %q) accepted", bad[0], bad[1])
		}
		if _, err := kv.Get(ctx, bad[0]); err == nil {
			t.Errorf("Set(%q, %q) stored the value although it failed", bad[0], bad[1])
		}
	}
	set := map[string]string{"orders.enabled": "false", "global.region": "eu", "target.pay.enabled": "true"}
	for k, v := range set {
		if err := flagstore.Set(ctx, kv, k, v); err != nil {
			t.Fatalf("Set(%q, %q): %v", k, v, err)
		}
	}
	if v, err := flagstore.Get(ctx, kv, "global.region"); err != nil || v != "eu" {
		t.Fatalf("Get: %q %v", v, err)
	}
	list, err := flagstore.List(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"global.region", "eu"}, {"orders.enabled", "false"}, {"target.pay.enabled", "true"}}
	if len(list) != len(want) {
		t.Fatalf("List = %v, want %v", list, want)
	}
	for i := range want {
		if list[i] != want[i] {
			t.Fatalf("List = %v, want %v (sorted by key)", list, want)
		}
	}
	if err := flagstore.Delete(ctx, kv, "orders.enabled"); err != nil {
		t.Fatal(err)
	}
	if _, err := flagstore.Get(ctx, kv, "orders.enabled"); !errors.Is(err, flagstore.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if list, _ := flagstore.List(ctx, kv); len(list) != 2 {
		t.Fatalf("List after Delete = %v", list)
	}
}

func TestBucketMissing(t *testing.T) {
	_, js := testkit.JetStream(t).Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := flagstore.Bucket(ctx, js); err == nil {
		t.Fatal("Bucket without bw_flags succeeded")
	}
	if _, err := flagstore.Open(ctx, js, flagstore.Options{}); err == nil {
		t.Fatal("Open without bw_flags succeeded")
	}
}

// TestWatch: Open loads the values already set, and follows every change
// (set, overwrite, delete) made through another client.
func TestWatch(t *testing.T) {
	js, kv := bucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := flagstore.Set(ctx, kv, "orders.enabled", "false"); err != nil {
		t.Fatal(err)
	}
	type change struct {
		key, value string
		deleted    bool
	}
	var mu sync.Mutex
	var changes []change
	f, err := flagstore.Open(ctx, js, flagstore.Options{OnChange: func(k, v string, d bool) {
		mu.Lock()
		changes = append(changes, change{k, v, d})
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	// The current values are there when Open returns.
	if f.Enabled("orders", "api") {
		t.Fatal("orders.enabled=false set before Open, but the route is enabled")
	}
	if got := f.Snapshot(); !maps.Equal(got, map[string]string{"orders.enabled": "false"}) {
		t.Fatalf("Snapshot = %v", got)
	}

	steps := []struct {
		name  string
		apply func() error
		check func() bool
	}{
		{"switch the route back on", func() error { return flagstore.Set(ctx, kv, "orders.enabled", "true") },
			func() bool { return f.Enabled("orders", "api") }},
		{"switch the target off", func() error { return flagstore.Set(ctx, kv, "target.api.enabled", "false") },
			func() bool {
				return !f.Enabled("orders", "api") && !f.Enabled("billing", "api") && f.Enabled("orders", "other")
			}},
		{"remove the target switch", func() error { return flagstore.Delete(ctx, kv, "target.api.enabled") },
			func() bool { return f.Enabled("orders", "api") }},
		{"a global flag", func() error { return flagstore.Set(ctx, kv, "global.region", "eu") },
			func() bool { return f.ForRoute("orders")["region"] == "eu" && f.ForRoute("billing")["region"] == "eu" }},
		{"a route flag overrides the global one", func() error { return flagstore.Set(ctx, kv, "orders.region", "us") },
			func() bool { return f.ForRoute("orders")["region"] == "us" && f.ForRoute("billing")["region"] == "eu" }},
	}
	for _, s := range steps {
		if err := s.apply(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		testkit.Eventually(t, 5*time.Second, s.name, s.check)
	}
	// ForRoute strips prefixes and includes the route's own flags only.
	got := f.ForRoute("orders")
	if want := map[string]string{"enabled": "true", "region": "us"}; !maps.Equal(got, want) {
		t.Fatalf("ForRoute(orders) = %v, want %v", got, want)
	}
	if f.ForRoute("none")["enabled"] != "" {
		t.Fatalf("ForRoute(none) = %v: another route's flag leaked", f.ForRoute("none"))
	}
	mu.Lock()
	defer mu.Unlock()
	var sawDelete bool
	for _, c := range changes {
		sawDelete = sawDelete || (c.key == "target.api.enabled" && c.deleted)
	}
	if !sawDelete {
		t.Errorf("OnChange did not hear the delete: %v", changes)
	}
}

// TestForRouteEmpty: with no flags, ForRoute is empty and every route enabled.
func TestForRouteEmpty(t *testing.T) {
	js, _ := bucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := flagstore.Open(ctx, js, flagstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	if len(f.ForRoute("orders")) != 0 || !f.Enabled("orders", "api") || len(f.Snapshot()) != 0 {
		t.Fatalf("empty bucket: ForRoute %v, Snapshot %v", f.ForRoute("orders"), f.Snapshot())
	}
}
