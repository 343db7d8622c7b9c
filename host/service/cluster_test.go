package service_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/host/headers"
)

// TestThreeNodeCluster: two runtime instances against a 3-node cluster
// with R3 streams share the durable consumers; every message gets exactly
// one outcome.
func TestThreeNodeCluster(t *testing.T) {
	urls := startCluster(t)
	up := newUpstream(t, func(id string, call int) int {
		if call == 1 && strings.HasSuffix(id, "7") {
			return 503
		}
		return 200
	})
	yaml := func(url string) string {
		return fmt.Sprintf("nats:\n  url: %s\nhttp:\n  listen: \"\"\nstreams:\n  replicas: 3\nroutes:%s", url, routeYAML("clustered", up.URL, ""))
	}
	one := runService(t, yaml(strings.Join(urls, ",")))
	runService(t, yaml(urls[2]+","+urls[1]))
	e := &env{t: t, svc: one}
	e.connectClient(urls[1])
	const n = 200
	for i := range n {
		e.publish("clustered", fmt.Sprintf("c-%d", i), fmt.Sprintf(`{"id":"c-%d"}`, i))
	}
	for i := range n {
		if m := e.outcome(fmt.Sprintf("c-%d", i)); m.Header.Get(headers.Outcome) != headers.OutcomeOK {
			t.Fatalf("c-%d: %v", i, m.Header)
		}
	}
	e.mu.Lock()
	got := len(e.outcomes)
	e.mu.Unlock()
	if got != n {
		t.Fatalf("%d outcomes for %d messages", got, n)
	}
}
