package topology_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/testkit"
	"github.com/breakwater-dev/breakwater/host/topology"
)

func connect(t *testing.T) (*nats.Conn, jetstream.JetStream, context.Context) {
	t.Helper()
	nc, js := testkit.JetStream(t).Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return nc, js, ctx
}

var opts = topology.Options{
	Replicas:        1,
	DuplicateWindow: 2 * time.Minute,
	OutMaxAge:       24 * time.Hour,
	DLQMaxAge:       72 * time.Hour,
	CacheMaxAge:     3 * time.Hour,
}

// TestEnsure creates every stream and bucket with the configured settings,
// and running it again (with other settings) updates them in place.
func TestEnsure(t *testing.T) {
	_, js, ctx := connect(t)
	if err := topology.Ensure(ctx, js, opts); err != nil {
		t.Fatal(err)
	}
	streams := []struct {
		name      string
		subject   string
		retention jetstream.RetentionPolicy
		maxAge    time.Duration
	}{
		{topology.StreamIn, "bw.in.>", jetstream.WorkQueuePolicy, 0},
		{topology.StreamOut, "bw.out.>", jetstream.LimitsPolicy, opts.OutMaxAge},
		{topology.StreamDLQ, "bw.dlq.>", jetstream.LimitsPolicy, opts.DLQMaxAge},
		{topology.StreamDLQData, "bw.dlqdata.>", jetstream.LimitsPolicy, opts.DLQMaxAge},
	}
	for _, s := range streams {
		st, err := js.Stream(ctx, s.name)
		if err != nil {
			t.Fatalf("stream %s: %v", s.name, err)
		}
		c := st.CachedInfo().Config
		if !slices.Equal(c.Subjects, []string{s.subject}) || c.Retention != s.retention || c.MaxAge != s.maxAge ||
			c.Duplicates != opts.DuplicateWindow || c.Storage != jetstream.FileStorage || !c.AllowDirect || c.Replicas != 1 {
			t.Errorf("stream %s: subjects %v retention %v max age %v duplicates %v storage %v direct %v replicas %d",
				s.name, c.Subjects, c.Retention, c.MaxAge, c.Duplicates, c.Storage, c.AllowDirect, c.Replicas)
		}
	}
	buckets := []struct {
		name    string
		history int64
		ttl     time.Duration
	}{
		{topology.BucketCache, 1, opts.CacheMaxAge},
		{topology.BucketFlags, 5, 0},
		{topology.BucketAttempts, 1, topology.AttemptsMaxAge},
		{topology.BucketRoutes, 5, 0},
	}
	for _, b := range buckets {
		kv, err := js.KeyValue(ctx, b.name)
		if err != nil {
			t.Fatalf("bucket %s: %v", b.name, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.History() != b.history || st.TTL() != b.ttl {
			t.Errorf("bucket %s: history %d ttl %v, want %d %v", b.name, st.History(), st.TTL(), b.history, b.ttl)
		}
	}

	// Idempotent: again with the same options, and data survives.
	if _, err := js.Publish(ctx, topology.In("orders"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := topology.Ensure(ctx, js, opts); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	// Changed settings are applied to the existing streams and buckets.
	changed := opts
	changed.OutMaxAge, changed.DuplicateWindow, changed.CacheMaxAge = time.Hour, time.Minute, 0
	if err := topology.Ensure(ctx, js, changed); err != nil {
		t.Fatalf("Ensure with changed options: %v", err)
	}
	out, err := js.Stream(ctx, topology.StreamOut)
	if err != nil {
		t.Fatal(err)
	}
	if c := out.CachedInfo().Config; c.MaxAge != time.Hour || c.Duplicates != time.Minute {
		t.Errorf("BW_OUT after the update: max age %v duplicates %v", c.MaxAge, c.Duplicates)
	}
	kv, _ := js.KeyValue(ctx, topology.BucketCache)
	if st, _ := kv.Status(ctx); st.TTL() != time.Hour {
		t.Errorf("bw_cache TTL with no cache TTL = %v, want the 1h default", st.TTL())
	}
	in, _ := js.Stream(ctx, topology.StreamIn)
	if info, _ := in.Info(ctx); info.State.Msgs != 1 {
		t.Errorf("BW_IN holds %d messages after Ensure ran again, want 1", info.State.Msgs)
	}
}

// TestCreateOrUpdate: the helpers create what is missing and update what
// exists (a second call changes settings, not the error).
func TestCreateOrUpdate(t *testing.T) {
	_, js, ctx := connect(t)
	sc := jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, MaxMsgs: 10}
	for _, max := range []int64{10, 20} {
		sc.MaxMsgs = max
		if err := topology.CreateOrUpdateStream(ctx, js, sc); err != nil {
			t.Fatalf("stream, max %d: %v", max, err)
		}
		s, _ := js.Stream(ctx, "T")
		if s.CachedInfo().Config.MaxMsgs != max {
			t.Fatalf("stream max msgs %d, want %d", s.CachedInfo().Config.MaxMsgs, max)
		}
	}
	for _, h := range []uint8{1, 3} {
		kv, err := topology.CreateOrUpdateKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "kv_t", History: h})
		if err != nil {
			t.Fatalf("bucket, history %d: %v", h, err)
		}
		if st, _ := kv.Status(ctx); st.History() != int64(h) {
			t.Fatalf("bucket history %d, want %d", st.History(), h)
		}
	}
	for _, d := range []string{"one", "two"} {
		obj, err := topology.CreateOrUpdateObjectStore(ctx, js, jetstream.ObjectStoreConfig{Bucket: "obj_t", Description: d})
		if err != nil {
			t.Fatalf("object store %s: %v", d, err)
		}
		if st, _ := obj.Status(ctx); st.Description() != d {
			t.Fatalf("object store description %q, want %q", st.Description(), d)
		}
	}
}

// TestRouteConsumers: EnsureRouteConsumer shapes the durable consumer,
// RemoveStaleRouteConsumers deletes only route consumers of routes that
// are gone, DeleteRouteConsumer tolerates a missing one.
func TestRouteConsumers(t *testing.T) {
	_, js, ctx := connect(t)
	if err := topology.Ensure(ctx, js, opts); err != nil {
		t.Fatal(err)
	}
	co := topology.ConsumerOptions{AckWait: 7 * time.Second, MaxAckPending: 4, Replicas: 1, MaxDeliver: 13}
	for _, r := range []string{"a", "b", "c"} {
		c, err := topology.EnsureRouteConsumer(ctx, js, r, co)
		if err != nil {
			t.Fatal(err)
		}
		cfg := c.CachedInfo().Config
		if cfg.Durable != topology.RouteConsumer(r) || cfg.FilterSubject != topology.In(r) || cfg.AckPolicy != jetstream.AckExplicitPolicy ||
			cfg.AckWait != co.AckWait || cfg.MaxAckPending != co.MaxAckPending || cfg.MaxDeliver != co.MaxDeliver {
			t.Errorf("route %s: consumer %+v", r, cfg)
		}
	}
	// MaxDeliver 0: no bound (-1); an update of an existing consumer.
	c, err := topology.EnsureRouteConsumer(ctx, js, "a", topology.ConsumerOptions{AckWait: 9 * time.Second, MaxAckPending: 4, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.CachedInfo().Config; cfg.MaxDeliver != -1 || cfg.AckWait != 9*time.Second {
		t.Errorf("updated consumer: max deliver %d ack wait %v", cfg.MaxDeliver, cfg.AckWait)
	}
	// A consumer that is not a route's stays.
	if _, err := js.CreateOrUpdateConsumer(ctx, topology.StreamIn, jetstream.ConsumerConfig{Durable: "other", FilterSubject: "bw.in.other.x", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	if err := topology.RemoveStaleRouteConsumers(ctx, js, []string{"a", "c"}); err != nil {
		t.Fatal(err)
	}
	if got := consumers(t, ctx, js); !slices.Equal(got, []string{"other", "route_a", "route_c"}) {
		t.Fatalf("consumers after removing stale ones: %v", got)
	}
	if err := topology.DeleteRouteConsumer(ctx, js, "a"); err != nil {
		t.Fatal(err)
	}
	if err := topology.DeleteRouteConsumer(ctx, js, "a"); err != nil {
		t.Fatalf("deleting a missing consumer: %v", err)
	}
	if got := consumers(t, ctx, js); !slices.Equal(got, []string{"other", "route_c"}) {
		t.Fatalf("consumers after deleting route_a: %v", got)
	}
}

func consumers(t *testing.T, ctx context.Context, js jetstream.JetStream) []string {
	t.Helper()
	s, err := js.Stream(ctx, topology.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	names := s.ConsumerNames(ctx)
	for n := range names.Name() {
		out = append(out, n)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestUnrouted: UnroutedSubjects lists the subjects holding messages no
// route serves (malformed ones included), and the unrouted consumer gets
// exactly their messages.
func TestUnrouted(t *testing.T) {
	_, js, ctx := connect(t)
	if err := topology.Ensure(ctx, js, opts); err != nil {
		t.Fatal(err)
	}
	// No stream: a clear error.
	for _, subj := range []string{"bw.in.orders", "bw.in.orders", "bw.in.gone", "bw.in.a.b", "bw.in.billing"} {
		if _, err := js.Publish(ctx, subj, []byte(subj)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := topology.UnroutedSubjects(ctx, js, []string{"orders", "billing"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bw.in.a.b", "bw.in.gone"}; !slices.Equal(got, want) {
		t.Fatalf("UnroutedSubjects = %v, want %v", got, want)
	}
	if got, _ := topology.UnroutedSubjects(ctx, js, []string{"orders", "billing", "gone"}); !slices.Equal(got, []string{"bw.in.a.b"}) {
		t.Fatalf("with route gone added: %v", got)
	}

	if c, err := topology.RecreateUnroutedConsumer(ctx, js, nil, topology.ConsumerOptions{}); c != nil || err != nil {
		t.Fatalf("no subjects: %v %v, want nil nil", c, err)
	}
	co := topology.ConsumerOptions{AckWait: 5 * time.Second, Replicas: 1}
	if _, err := topology.RecreateUnroutedConsumer(ctx, js, []string{"bw.in.gone"}, co); err != nil {
		t.Fatal(err)
	}
	// Recreated for other subjects: replaces the first.
	c, err := topology.RecreateUnroutedConsumer(ctx, js, got, co)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.CachedInfo().Config; cfg.Durable != topology.UnroutedConsumer || !slices.Equal(cfg.FilterSubjects, got) {
		t.Fatalf("unrouted consumer %+v", cfg)
	}
	batch, err := c.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for m := range batch.Messages() {
		subjects = append(subjects, m.Subject())
	}
	slices.Sort(subjects)
	if want := []string{"bw.in.a.b", "bw.in.gone"}; !slices.Equal(subjects, want) {
		t.Fatalf("the unrouted consumer delivered %v, want %v", subjects, want)
	}
}

func TestUnroutedWithoutStream(t *testing.T) {
	_, js, ctx := connect(t)
	if _, err := topology.UnroutedSubjects(ctx, js, nil); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("no BW_IN: %v", err)
	}
	if err := topology.RemoveStaleRouteConsumers(ctx, js, nil); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("no BW_IN: %v", err)
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ subject, route string }{
		{"bw.in.orders", "orders"},
		{"bw.in.a-b_c", "a-b_c"},
		{"bw.in.", ""},
		{"bw.in.a.b", ""},
		{"bw.out.orders", ""},
		{"orders", ""},
	} {
		if got := topology.RouteOfIn(c.subject); got != c.route {
			t.Errorf("RouteOfIn(%q) = %q, want %q", c.subject, got, c.route)
		}
	}
	if topology.In("r") != "bw.in.r" || topology.Out("r") != "bw.out.r" || topology.DLQ("r") != "bw.dlq.r" ||
		topology.DLQData("r") != "bw.dlqdata.r" || topology.Call("r") != "bw.call.r" || topology.RouteConsumer("r") != "route_r" {
		t.Error("subject or consumer names changed: producers and operators depend on them")
	}
}
