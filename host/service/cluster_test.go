package service_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/breakwater-dev/breakwater/host/headers"
)

// startCluster starts a 3-node JetStream cluster in-process on loopback and
// returns its client URLs.
func startCluster(t *testing.T) []string {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var urls []string
	var servers []*server.Server
	for i := range 3 {
		opts := &server.Options{
			ServerName: fmt.Sprintf("bw-%d", i), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "bw-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		servers = append(servers, s)
		t.Cleanup(s.Shutdown)
	}
	for _, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatal("cluster node not ready")
		}
		urls = append(urls, s.ClientURL())
	}
	// Wait (bounded) for the JetStream meta leader.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return urls
			}
		}
	}
	t.Fatal("no JetStream meta leader within 30s")
	return nil
}

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
