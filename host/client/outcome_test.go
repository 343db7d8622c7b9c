package client

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/embedded"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// TestFindOutcome: the stored outcome of a BW_IN sequence is found on
// bw.out.<route> by its Nats-Msg-Id among other routes' and messages'
// outcomes; a missing one, or one beyond maxScan, is ErrNoOutcome.
func TestFindOutcome(t *testing.T) {
	srv, err := embedded.Start(context.Background(), embedded.Options{Port: -1, StoreDir: filepath.Join(t.TempDir(), "js"), ReadyTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: topology.StreamOut, Subjects: []string{topology.OutPrefix + ">"}}); err != nil {
		t.Fatal(err)
	}
	pub := func(route string, seq uint64, outcome string) {
		m := nats.NewMsg(topology.Out(route))
		m.Header.Set(headers.MsgID, OutcomeID(route, seq))
		m.Header.Set(headers.Outcome, outcome)
		m.Header.Set(headers.Attempts, "2")
		m.Data = fmt.Appendf(nil, `{"seq":%d}`, seq)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(1); i <= 300; i++ {
		pub("a", i, "ok")
		pub("b", i, "dead")
	}
	r, err := FindOutcome(ctx, js, "b", 7, 0)
	if err != nil || r.Outcome != "dead" || r.Attempts != 2 || string(r.Payload) != `{"seq":7}` {
		t.Fatalf("b:7: %v %+v", err, r)
	}
	if _, err := FindOutcome(ctx, js, "a", 301, 0); !errors.Is(err, ErrNoOutcome) {
		t.Fatalf("a:301: %v, want ErrNoOutcome", err)
	}
	// The newest 64 sequences hold 32 outcomes of a; the next span is read
	// from its start (a:1 first): a:150 is beyond 40 messages.
	if _, err := FindOutcome(ctx, js, "a", 150, 40); !errors.Is(err, ErrNoOutcome) {
		t.Fatalf("a:150 with maxScan 40: %v, want ErrNoOutcome", err)
	}
	if r, err := FindOutcome(ctx, js, "a", 1, 0); err != nil || r.Outcome != "ok" {
		t.Fatalf("a:1: %v", err)
	}
	if r, err := FindOutcome(ctx, js, "a", 290, 50); err != nil || r.Outcome != "ok" {
		t.Fatalf("a:290 with maxScan 50: %v", err)
	}
}
