package deadletter_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// TestLoadHistory reads bw_attempts as the pipeline writes it.
func TestLoadHistory(t *testing.T) {
	_, js := testkit.JetStream(t).Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// No bucket yet: no history, no error.
	if h, err := deadletter.LoadHistory(ctx, js, "orders", 1); h != nil || err != nil {
		t.Fatalf("no bucket: %v %v", h, err)
	}
	if err := topology.Ensure(ctx, js, topology.Options{Replicas: 1, DuplicateWindow: time.Minute}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, topology.BucketAttempts)
	if err != nil {
		t.Fatal(err)
	}
	put := func(seq uint64, v string) {
		t.Helper()
		if _, err := kv.PutString(ctx, deadletter.HistoryKey("orders", seq), v); err != nil {
			t.Fatal(err)
		}
	}
	put(1, `{"errors":[{"attempt":1,"kind":"status","status":500},{"attempt":1,"kind":"internal"}]}`)
	put(2, `[{"attempt":1,"kind":"timeout"}]`)
	put(3, `{`)
	for _, c := range []struct {
		seq      uint64
		errors   int
		calls    int
		none, ok bool
	}{
		{seq: 1, errors: 2, calls: 1, ok: true},
		{seq: 2, errors: 1, calls: 1, ok: true},
		{seq: 3},
		{seq: 4, none: true, ok: true},
	} {
		h, err := deadletter.LoadHistory(ctx, js, "orders", c.seq)
		switch {
		case !c.ok:
			if err == nil {
				t.Errorf("seq %d: bad JSON accepted: %+v", c.seq, h)
			}
		case err != nil:
			t.Errorf("seq %d: %v", c.seq, err)
		case c.none:
			if h != nil {
				t.Errorf("seq %d: history %+v, want none", c.seq, h)
			}
		case h == nil || len(h.Errors) != c.errors || h.TargetCalls() != c.calls:
			t.Errorf("seq %d: history %+v, want %d errors, %d target calls", c.seq, h, c.errors, c.calls)
		}
	}
	if deadletter.TargetCalls([]abi.AttemptError{{Attempt: 1, Kind: abi.ErrorInternal}, {Attempt: 1, Kind: abi.ErrorStatus}, {Attempt: 2, Kind: abi.ErrorTimeout}}) != 2 {
		t.Error("TargetCalls counts internal failures")
	}
}

// TestFindInFlight finds a pending message on BW_IN by its id, or by its
// sequence when it was published without one, within the scan bound.
func TestFindInFlight(t *testing.T) {
	_, js := testkit.JetStream(t).Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := deadletter.FindInFlight(ctx, js, "orders", "x", 10); err == nil {
		t.Fatal("no BW_IN: no error")
	}
	if err := topology.Ensure(ctx, js, topology.Options{Replicas: 1, DuplicateWindow: time.Minute}); err != nil {
		t.Fatal(err)
	}
	pub := func(subject, id, data string) uint64 {
		t.Helper()
		m := nats.NewMsg(subject)
		m.Data = []byte(data)
		if id != "" {
			m.Header.Set(headers.MsgID, id)
		}
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	pub(topology.In("billing"), "b-1", "billing") // another route
	pub(topology.In("orders"), "m-1", "first")
	for i := range 5 {
		pub(topology.In("orders"), "f-"+strconv.Itoa(i), "filler")
	}
	noID := pub(topology.In("orders"), "", "no id")
	pub(topology.In("orders"), "m-last", "last")
	withID := pub(topology.In("orders"), "m-2", "with id")

	for _, c := range []struct {
		id      string
		maxScan int
		want    string // payload; "" = ErrNotInFlight
	}{
		{"m-1", 10, "first"},
		{"b-1", 100, ""},                             // another route's message
		{strconv.FormatUint(noID, 10), 1, "no id"},   // by sequence, no scan needed
		{strconv.FormatUint(withID, 10), 100, ""},    // a sequence of a message with an id is not its id
		{"m-last", 3, ""},                            // beyond the scan bound
		{"m-last", 10, "last"},                       // within it
		{"gone", 100, ""},                            // never published
		{strconv.FormatUint(noID+1000, 10), 100, ""}, // no such sequence
	} {
		m, err := deadletter.FindInFlight(ctx, js, "orders", c.id, c.maxScan)
		if c.want == "" {
			if !errors.Is(err, deadletter.ErrNotInFlight) {
				t.Errorf("FindInFlight(%q, %d) = %v, %v; want ErrNotInFlight", c.id, c.maxScan, m, err)
			}
			continue
		}
		if err != nil || string(m.Data) != c.want || m.Subject != topology.In("orders") {
			t.Errorf("FindInFlight(%q, %d) = %v, %v; want %q", c.id, c.maxScan, m, err, c.want)
		}
	}
}
