package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// setup starts a server with the topology and returns a client.
func setup(t *testing.T) (jetstream.JetStream, context.Context) {
	t.Helper()
	_, js := testkit.JetStream(t).Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if err := topology.Ensure(ctx, js, topology.Options{Replicas: 1, DuplicateWindow: time.Minute}); err != nil {
		t.Fatal(err)
	}
	return js, ctx
}

// park publishes a dead-letter record for message id of route (as the
// pipeline does) and returns its BW_DLQ sequence.
func park(t *testing.T, ctx context.Context, js jetstream.JetStream, route, id string, hdr map[string][]string) uint64 {
	t.Helper()
	rec := &deadletter.Record{
		Route: route, Subject: topology.In(route), MessageID: id, Attempts: 2, Reason: "attempts exhausted",
		Errors:  []abi.AttemptError{{Attempt: 1, Kind: "status", Status: 500}, {Attempt: 2, Kind: "status", Status: 503}},
		Headers: hdr, Payload: []byte(`{"id":"` + id + `"}`),
	}
	return publish(t, ctx, js, topology.DLQ(route), rec.Marshal())
}

func publish(t *testing.T, ctx context.Context, js jetstream.JetStream, subject string, data []byte) uint64 {
	t.Helper()
	ack, err := js.Publish(ctx, subject, data)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func ids(parked []deadletter.Parked) []string {
	var out []string
	for _, p := range parked {
		if p.Record == nil {
			out = append(out, "!"+strconv.FormatUint(p.Seq, 10))
			continue
		}
		out = append(out, p.Record.MessageID)
	}
	return out
}

// TestList: List returns one route's dead letters oldest first (limit
// honoured), ListAll every route's; a message that is not a record is
// listed with its error, never skipped.
func TestList(t *testing.T) {
	js, ctx := setup(t)
	if got, err := deadletter.List(ctx, js, "orders", 0); err != nil || len(got) != 0 {
		t.Fatalf("empty DLQ: %v %v", got, err)
	}
	park(t, ctx, js, "orders", "o-1", nil)
	park(t, ctx, js, "billing", "b-1", nil)
	park(t, ctx, js, "orders", "o-2", nil)
	junk := publish(t, ctx, js, topology.DLQ("orders"), []byte("not json"))
	park(t, ctx, js, "orders", "o-3", nil)

	for _, c := range []struct {
		name  string
		list  func() ([]deadletter.Parked, error)
		want  []string
		route string
	}{
		{"orders", func() ([]deadletter.Parked, error) { return deadletter.List(ctx, js, "orders", 0) }, []string{"o-1", "o-2", "!" + strconv.FormatUint(junk, 10), "o-3"}, "orders"},
		{"orders, limit 2", func() ([]deadletter.Parked, error) { return deadletter.List(ctx, js, "orders", 2) }, []string{"o-1", "o-2"}, "orders"},
		{"billing", func() ([]deadletter.Parked, error) { return deadletter.List(ctx, js, "billing", 0) }, []string{"b-1"}, "billing"},
		{"a route without dead letters", func() ([]deadletter.Parked, error) { return deadletter.List(ctx, js, "none", 0) }, nil, ""},
		{"all", func() ([]deadletter.Parked, error) { return deadletter.ListAll(ctx, js, 0) }, []string{"o-1", "b-1", "o-2", "!" + strconv.FormatUint(junk, 10), "o-3"}, ""},
	} {
		got, err := c.list()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(ids(got), c.want) {
			t.Errorf("%s: %v, want %v", c.name, ids(got), c.want)
		}
		for _, p := range got {
			if c.route != "" && p.Route() != c.route {
				t.Errorf("%s: seq %d has route %q", c.name, p.Seq, p.Route())
			}
			if (p.Record == nil) != (p.Err != nil) {
				t.Errorf("%s: seq %d: record %v err %v", c.name, p.Seq, p.Record, p.Err)
			}
		}
	}
}

func TestListWithoutStream(t *testing.T) {
	_, js := testkit.JetStream(t).Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := deadletter.List(ctx, js, "orders", 0); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("List with no BW_DLQ: %v", err)
	}
	if _, err := deadletter.Replay(ctx, js, "orders", nil); err == nil {
		t.Fatal("Replay with no BW_DLQ succeeded")
	}
}

// TestFind finds by DLQ sequence and by message id (every dead letter of
// an id dead-lettered twice).
func TestFind(t *testing.T) {
	js, ctx := setup(t)
	s1 := park(t, ctx, js, "orders", "o-1", nil)
	park(t, ctx, js, "orders", "o-2", nil)
	s3 := park(t, ctx, js, "orders", "o-1", nil)
	for _, c := range []struct {
		ref  string
		want []uint64
	}{
		{"o-1", []uint64{s1, s3}},
		{strconv.FormatUint(s1, 10), []uint64{s1}},
		{"nope", nil},
	} {
		got, err := deadletter.Find(ctx, js, "orders", c.ref)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, p := range got {
			seqs = append(seqs, p.Seq)
		}
		if !slices.Equal(seqs, c.want) {
			t.Errorf("Find(%q) = %v, want %v", c.ref, seqs, c.want)
		}
	}
}

// inMsgs reads every message on BW_IN.
func inMsgs(t *testing.T, ctx context.Context, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(ctx, topology.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestReplay puts dead letters back on bw.in with their payload and
// headers (Nats- headers but the new id dropped), marks them, and removes
// them from the DLQ; a selection replays only the named ones.
func TestReplay(t *testing.T) {
	js, ctx := setup(t)
	s1 := park(t, ctx, js, "orders", "o-1", map[string][]string{"X-Trace": {"t1"}, "Nats-Expected-Stream": {"OTHER"}, headers.MsgID: {"o-1"}})
	park(t, ctx, js, "orders", "o-2", nil)
	s3 := park(t, ctx, js, "orders", "o-3", map[string][]string{headers.ReplayOf: {"first"}})
	junk := publish(t, ctx, js, topology.DLQ("orders"), []byte("not json"))
	park(t, ctx, js, "billing", "b-1", nil)

	if n, err := deadletter.Replay(ctx, js, "orders", []string{"nope"}); err == nil || n != 0 {
		t.Fatalf("replaying an unknown id: %d %v", n, err)
	}
	// By id and by sequence.
	n, err := deadletter.Replay(ctx, js, "orders", []string{"o-1", strconv.FormatUint(s3, 10)})
	if err != nil || n != 2 {
		t.Fatalf("replay of two: %d %v", n, err)
	}
	left, _ := deadletter.List(ctx, js, "orders", 0)
	if want := []string{"o-2", "!" + strconv.FormatUint(junk, 10)}; !slices.Equal(ids(left), want) {
		t.Fatalf("left parked: %v, want %v", ids(left), want)
	}
	msgs := inMsgs(t, ctx, js)
	if len(msgs) != 2 {
		t.Fatalf("%d messages on BW_IN, want 2", len(msgs))
	}
	m := msgs[0]
	if m.Subject != topology.In("orders") || string(m.Data) != `{"id":"o-1"}` || m.Header.Get("X-Trace") != "t1" ||
		m.Header.Get("Nats-Expected-Stream") != "" || m.Header.Get(headers.MsgID) != fmt.Sprintf("o-1-replay-%d", s1) ||
		m.Header.Get(headers.Replayed) != strconv.FormatUint(s1, 10) || m.Header.Get(headers.ReplayOf) != "o-1" {
		t.Errorf("replayed o-1: %s %s %v", m.Subject, m.Data, m.Header)
	}
	if got := msgs[1].Header.Get(headers.ReplayOf); got != "first" {
		t.Errorf("a replay of a replay has Bw-Replay-Of %q, want the producer's id %q", got, "first")
	}
	// Everything else of the route: the record that is not one stays.
	if n, err := deadletter.Replay(ctx, js, "orders", nil); err != nil || n != 1 {
		t.Fatalf("replay of the rest: %d %v", n, err)
	}
	if left, _ := deadletter.List(ctx, js, "orders", 0); len(left) != 1 || left[0].Record != nil {
		t.Fatalf("after replaying everything: %v", ids(left))
	}
	if other, _ := deadletter.List(ctx, js, "billing", 0); len(other) != 1 {
		t.Fatalf("another route's dead letters were touched: %v", ids(other))
	}
}

// TestOversizedOriginal: a record that refers to its original in
// BW_DLQ_DATA replays the original, and Remove deletes both.
func TestOversizedOriginal(t *testing.T) {
	js, ctx := setup(t)
	orig := nats.NewMsg(topology.DLQData("orders"))
	orig.Data = []byte("the big original")
	orig.Header.Set("X-Orig", "yes")
	ack, err := js.PublishMsg(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	ref := &deadletter.Ref{Stream: topology.StreamDLQData, Seq: ack.Sequence, Size: len(orig.Data)}
	rec := &deadletter.Record{Route: "orders", Subject: topology.In("orders"), MessageID: "big-1", Original: ref}
	publish(t, ctx, js, topology.DLQ("orders"), rec.Marshal())
	rec.MessageID = "big-2"
	publish(t, ctx, js, topology.DLQ("orders"), rec.Marshal())

	if n, err := deadletter.Replay(ctx, js, "orders", []string{"big-1"}); err != nil || n != 1 {
		t.Fatalf("replay: %d %v", n, err)
	}
	msgs := inMsgs(t, ctx, js)
	if len(msgs) != 1 || string(msgs[0].Data) != "the big original" || msgs[0].Header.Get("X-Orig") != "yes" {
		t.Fatalf("replayed original: %v", msgs)
	}
	parked, _ := deadletter.List(ctx, js, "orders", 0)
	if n, err := deadletter.Remove(ctx, js, parked); err != nil || n != 1 {
		t.Fatalf("remove: %d %v", n, err)
	}
	if left, _ := deadletter.List(ctx, js, "orders", 0); len(left) != 0 {
		t.Fatalf("after Remove: %v", ids(left))
	}
	data, _ := js.Stream(ctx, topology.StreamDLQData)
	if _, err := data.GetMsg(ctx, ack.Sequence); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("the original is still in BW_DLQ_DATA: %v", err)
	}
	// A record whose original is gone cannot be replayed, and stays.
	publish(t, ctx, js, topology.DLQ("orders"), rec.Marshal())
	if _, err := deadletter.Replay(ctx, js, "orders", nil); err == nil {
		t.Fatal("replayed a dead letter whose original is gone")
	}
	if left, _ := deadletter.List(ctx, js, "orders", 0); len(left) != 1 {
		t.Fatalf("a failed replay removed the dead letter: %v", ids(left))
	}
}

// TestRemoveAndPurge: Remove deletes the given dead letters; Purge empties
// one route, its originals too.
func TestRemoveAndPurge(t *testing.T) {
	js, ctx := setup(t)
	park(t, ctx, js, "orders", "o-1", nil)
	park(t, ctx, js, "orders", "o-2", nil)
	park(t, ctx, js, "billing", "b-1", nil)
	publish(t, ctx, js, topology.DLQData("orders"), []byte("orig"))
	publish(t, ctx, js, topology.DLQData("billing"), []byte("orig"))

	first, _ := deadletter.Find(ctx, js, "orders", "o-1")
	if n, err := deadletter.Remove(ctx, js, first); err != nil || n != 1 {
		t.Fatalf("remove: %d %v", n, err)
	}
	if left, _ := deadletter.List(ctx, js, "orders", 0); !slices.Equal(ids(left), []string{"o-2"}) {
		t.Fatalf("after Remove: %v", ids(left))
	}
	if err := deadletter.Purge(ctx, js, "orders"); err != nil {
		t.Fatal(err)
	}
	if left, _ := deadletter.List(ctx, js, "orders", 0); len(left) != 0 {
		t.Fatalf("after Purge: %v", ids(left))
	}
	if other, _ := deadletter.List(ctx, js, "billing", 0); len(other) != 1 {
		t.Fatalf("Purge of orders touched billing: %v", ids(other))
	}
	data, _ := js.Stream(ctx, topology.StreamDLQData)
	for route, want := range map[string]uint64{"orders": 0, "billing": 1} {
		info, err := data.Info(ctx, jetstream.WithSubjectFilter(topology.DLQData(route)))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.State.Subjects[topology.DLQData(route)]; got != want {
			t.Errorf("BW_DLQ_DATA holds %d originals of %s, want %d", got, route, want)
		}
	}
}

// TestRemoveAlreadyGone: Remove tolerates a dead letter that is already
// gone (another operator removed or replayed it), as its code intends.
func TestRemoveAlreadyGone(t *testing.T) {
	js, ctx := setup(t)
	park(t, ctx, js, "orders", "o-1", nil)
	parked, _ := deadletter.Find(ctx, js, "orders", "o-1")
	if n, err := deadletter.Remove(ctx, js, parked); err != nil || n != 1 {
		t.Fatalf("remove: %d %v", n, err)
	}
	if n, err := deadletter.Remove(ctx, js, parked); err != nil || n != 1 {
		t.Fatalf("removing it again: %d %v", n, err)
	}
}
