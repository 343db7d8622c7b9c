package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/flagstore"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/service"
)

// TestKillSwitchOnTwoInstances: a second instance shares the first one's
// NATS; `<route>.enabled false` is seen by both, calls stop reaching the
// target and go to fallback, and removing it switches the route back on.
func TestKillSwitchOnTwoInstances(t *testing.T) {
	var hits atomic.Int64
	up := newUpstream(t, func(string, int) int { hits.Add(1); return 200 })
	stub := "    stub:\n      payload: '{\"status\":\"switched off\"}'\n"
	e := newEnv(t, "routes:"+syncRoute("orders", up.URL, stub))
	e.run()

	// Instance two.
	two := runService(t, fmt.Sprintf("nats:\n  url: %s\nhttp:\n  listen: \"\"\nroutes:%s", e.svc.NATSURL(), syncRoute("orders", up.URL, stub)))
	ctx := context.Background()

	c := newClient(t, e)
	if res, err := call(t, c, "orders", `{}`, 5*time.Second); err != nil || res.Outcome != headers.OutcomeOK {
		t.Fatalf("before the switch: %v", err)
	}
	kv, err := flagstore.Bucket(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	if err := flagstore.Set(ctx, kv, "orders.enabled", "maybe"); err == nil {
		t.Fatal("a non-boolean .enabled value was accepted")
	}
	if err := flagstore.Set(ctx, kv, "orders.enabled", "false"); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []*service.Service{e.svc, two} {
		waitUntil(t, "the switch to reach an instance", func() bool { return !svc.Flags().Enabled("orders", "orders") })
	}
	before := hits.Load()
	for range 10 { // the queue group spreads these over both instances
		res, err := call(t, c, "orders", `{}`, 5*time.Second)
		if err != nil || res.Outcome != headers.OutcomeStub || res.ErrorKind != "switched_off" {
			t.Fatalf("switched off: %+v %v", res, err)
		}
	}
	if hits.Load() != before {
		t.Fatalf("a switched-off route called its target %d times", hits.Load()-before)
	}
	if err := flagstore.Set(ctx, kv, "orders.region", "eu"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a module flag", func() bool { return two.Flags().ForRoute("orders")["region"] == "eu" })
	if err := flagstore.Delete(ctx, kv, "orders.enabled"); err != nil {
		t.Fatal(err)
	}
	if err := flagstore.Delete(ctx, kv, "orders.enabled"); !errors.Is(err, flagstore.ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	for _, svc := range []*service.Service{e.svc, two} {
		waitUntil(t, "the route back on", func() bool { return svc.Flags().Enabled("orders", "orders") })
	}
	if res, err := call(t, c, "orders", `{}`, 5*time.Second); err != nil || res.Outcome != headers.OutcomeOK {
		t.Fatalf("after removing the switch: %v", err)
	}
}
