package testkit_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/testkit"
)

func TestJetStream(t *testing.T) {
	s := testkit.JetStream(t)
	if !strings.HasPrefix(s.URL, "nats://127.0.0.1:") {
		t.Fatalf("URL %s is not on loopback", s.URL)
	}
	_, js := s.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Two servers in one test do not collide.
	if other := testkit.JetStream(t); other.URL == s.URL {
		t.Fatal("two servers on one port")
	}
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := testkit.NewCluster(t, 3)
	_, js := testkit.Connect(t, c.URLs())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3"}, Replicas: 3}); err != nil {
		t.Fatalf("R3 stream: %v", err)
	}
	// A stopped node comes back on its port with its storage.
	c.Stop(0)
	if c.Server(0) != nil {
		t.Fatal("a stopped node is still listed")
	}
	c.Start(0)
	c.WaitPeers(3)
	if c.Server(0) == nil || c.Server(0).ClientURL() != c.ClientURLs()[0] {
		t.Fatalf("node 0 restarted on %v, want %s", c.Server(0), c.ClientURLs()[0])
	}
	_, js0 := testkit.Connect(t, c.ClientURLs()[0])
	testkit.Eventually(t, 20*time.Second, "the R3 stream through the restarted node", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js0.Stream(ctx, "R3")
		return err == nil && s.CachedInfo().Cluster != nil && s.CachedInfo().Cluster.Leader != ""
	})
}

func TestPoll(t *testing.T) {
	n := 0
	if !testkit.Poll(time.Second, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("Poll stopped after %d calls", n)
	}
	start := time.Now()
	if testkit.Poll(100*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll of a false condition reported true")
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Fatalf("Poll of 100ms took %v", d)
	}
}

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventuallyFailsNamingWhat(t *testing.T) {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testkit.Eventually(f, 50*time.Millisecond, "the moon", func() bool { return false })
	}()
	<-done
	if !strings.Contains(f.msg, "the moon") || !strings.Contains(f.msg, "50ms") {
		t.Fatalf("failure message %q does not say what and how long", f.msg)
	}
}

func TestUpstream(t *testing.T) {
	up := testkit.NewUpstream(t)
	get := func() (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Post(up.URL, "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || body != `{"ok":true}` {
		t.Fatalf("default: %d %s", code, body)
	}
	up.Set(testkit.Reply{Status: 503, Body: "down", Delay: 50 * time.Millisecond})
	start := time.Now()
	if code, body := get(); code != 503 || body != "down" || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("set: %d %s after %v", code, body, time.Since(start))
	}
	var seen []byte
	up.Respond(func(r *http.Request, body []byte, n int) testkit.Reply {
		seen = body
		return testkit.Reply{Status: 200 + n, Header: http.Header{"X-N": {fmt.Sprint(n)}}}
	})
	if code, _ := get(); code != 203 || !bytes.Equal(seen, []byte("hello")) {
		t.Fatalf("respond: %d, body seen %q", code, seen)
	}
	if up.Calls() != 3 {
		t.Fatalf("Calls = %d, want 3", up.Calls())
	}
}

func TestModule(t *testing.T) {
	for _, name := range []string{"retry-constant", "trap"} { // modules/, modules/fixtures/
		if b := testkit.Module(t, name); !bytes.HasPrefix(b, []byte("\x00asm")) {
			t.Errorf("%s: not a wasm module", name)
		}
	}
	dir := testkit.ModuleDir(t, "retry-constant", "trap")
	for _, name := range []string{"retry-constant", "trap"} {
		b, err := os.ReadFile(filepath.Join(dir, name+".wasm"))
		if err != nil || !bytes.Equal(b, testkit.Module(t, name)) {
			t.Errorf("ModuleDir: %s: %v", name, err)
		}
	}
}

func TestFreePort(t *testing.T) {
	p := testkit.FreePort(t)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("the free port %d is not free: %v", p, err)
	}
	ln.Close()
}

func TestLogBuffer(t *testing.T) {
	var l testkit.LogBuffer
	fmt.Fprintln(&l, `{"level":"INFO","msg":"a"}`)
	fmt.Fprintln(&l, `{"level":"ERROR","msg":"b"}`)
	if got := l.Line(`"ERROR"`, `"b"`); got != `{"level":"ERROR","msg":"b"}` {
		t.Fatalf("Line = %q", got)
	}
	if l.Line("nope") != "" {
		t.Fatal("Line found a missing fragment")
	}
}
