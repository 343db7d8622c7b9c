package testkit

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readyTimeout bounds how long a server may take to accept connections.
const readyTimeout = 20 * time.Second

// Server is a running nats-server with JetStream.
type Server struct {
	*server.Server
	// URL is the client URL (nats://127.0.0.1:<port>).
	URL string
}

// JetStream starts a nats-server with JetStream on a random loopback port,
// storing under t.TempDir(), and shuts it down when the test ends. Each
// option may change the server's options before it starts.
func JetStream(t testing.TB, opts ...func(*server.Options)) *Server {
	t.Helper()
	o := &server.Options{
		ServerName: "bw-test", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	}
	for _, f := range opts {
		f(o)
	}
	s := startServer(t, o)
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return &Server{Server: s, URL: s.ClientURL()}
}

// Connect opens a client connection to s and its JetStream context, both
// closed when the test ends.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return Connect(t, s.URL, opts...)
}

// Connect opens a client connection to url (one URL or a comma-separated
// list) and its JetStream context; the connection is closed when the test
// ends.
func Connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("testkit: connecting to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("testkit: jetstream: %v", err)
	}
	return nc, js
}

func startServer(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("testkit: nats-server %s: %v", o.ServerName, err)
	}
	go s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		s.Shutdown()
		t.Fatalf("testkit: nats-server %s not ready within %v", o.ServerName, readyTimeout)
	}
	return s
}

// FreePort returns a loopback TCP port nobody listens on (at the time of
// the call).
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Cluster is an in-process JetStream cluster on loopback. Its nodes, named
// bw-0 … bw-<n-1>, keep their ports and storage when stopped and started
// again. Safe for concurrent use.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	opts    []*server.Options
	servers []*server.Server
}

// metaLeaderTimeout bounds the wait for a JetStream meta leader.
const metaLeaderTimeout = 30 * time.Second

// NewCluster starts an n-node JetStream cluster on loopback, waits
// (bounded) until it has a meta leader that sees all n nodes online (so an
// R<n> stream can be placed at once), and stops every node when the test
// ends.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	routes := make([]string, n)
	clusterPorts := make([]int, n)
	for i := range n {
		clusterPorts[i] = FreePort(t)
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", clusterPorts[i])
	}
	for i := range n {
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("bw-%d", i), Host: "127.0.0.1", Port: FreePort(t),
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "bw-test", Host: "127.0.0.1", Port: clusterPorts[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		c.servers = append(c.servers, nil)
	}
	t.Cleanup(func() {
		for i := range n {
			c.Stop(i)
		}
	})
	for i := range n {
		c.Start(i)
	}
	c.WaitPeers(n)
	return c
}

// Start starts node i again (same ports, same storage) and waits until it
// accepts connections.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	o := *c.opts[i]
	s := startServer(c.t, &o)
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
}

// Stop shuts node i down (a stopped node is left alone).
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Server returns node i (nil while stopped).
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// ClientURLs returns every node's client URL, running or not.
func (c *Cluster) ClientURLs() []string {
	var u []string
	for _, o := range c.opts {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return u
}

// URLs returns the client URLs joined by commas, as nats.Connect and the
// nats.url setting take them.
func (c *Cluster) URLs() string { return strings.Join(c.ClientURLs(), ",") }

// WaitMetaLeader waits (bounded) until a running node leads JetStream.
func (c *Cluster) WaitMetaLeader() {
	c.t.Helper()
	Eventually(c.t, metaLeaderTimeout, "a JetStream meta leader", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.servers {
			if s != nil && s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
}

// WaitPeers waits (bounded) until a running node leads JetStream and sees
// n nodes online.
func (c *Cluster) WaitPeers(n int) {
	c.t.Helper()
	Eventually(c.t, metaLeaderTimeout, fmt.Sprintf("a JetStream meta leader seeing %d nodes online", n), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.servers {
			if s != nil && s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) >= n {
				return true
			}
		}
		return false
	})
}
