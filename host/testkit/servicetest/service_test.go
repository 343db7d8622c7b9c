package servicetest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/testkit/servicetest"
	"github.com/breakwater-dev/breakwater/host/topology"
)

func config(t *testing.T) string {
	up := testkit.NewUpstream(t)
	return fmt.Sprintf(`
nats:
  embedded: {port: -1, store_dir: %s}
http: {listen: "127.0.0.1:0"}
routes:
  - name: r
    target: {http: {url: %s}}
modules:
  cache_dir: none
`, t.TempDir(), up.URL)
}

// TestService: the service is ready when Service returns, serves its
// topology, and stops cleanly.
func TestService(t *testing.T) {
	in := servicetest.Service(t, config(t))
	if err := in.Ready(context.Background()); err != nil {
		t.Fatalf("not ready after Service returned: %v", err)
	}
	_, js := testkit.Connect(t, in.NATSURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Consumer(ctx, topology.StreamIn, topology.RouteConsumer("r")); err != nil {
		t.Fatalf("route consumer: %v", err)
	}
	if in.Logs.Line("breakwater running") == "" {
		t.Fatalf("the log was not collected:\n%s", in.Logs.String())
	}
	if err := in.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := in.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// TestStartService: a service started without running it is not ready
// (no pipeline runs) until Run.
func TestStartService(t *testing.T) {
	in := servicetest.StartService(t, servicetest.Config(t, config(t)))
	if in.Ran() {
		t.Fatal("Ran before Run")
	}
	if err := in.Ready(context.Background()); err == nil {
		t.Fatal("ready before Run")
	}
	in.Run()
	in.Run() // a second Run does nothing
	in.WaitReady(servicetest.ReadyTimeout)
	if !in.Ran() {
		t.Fatal("not Ran after Run")
	}
}
