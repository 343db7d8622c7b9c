package topology

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Options sizes what Ensure creates.
type Options struct {
	Replicas        int
	DuplicateWindow time.Duration
	OutMaxAge       time.Duration
	DLQMaxAge       time.Duration
	CacheMaxAge     time.Duration // the longest cache TTL of any route
	// DecisionsMaxAge and DecisionsMaxBytes bound BW_DECISIONS (zero: 24h,
	// 256 MiB).
	DecisionsMaxAge   time.Duration
	DecisionsMaxBytes int64
}

// AttemptsMaxAge bounds how long an error history outlives a message that
// never reached a terminal outcome (it is deleted at the outcome).
const AttemptsMaxAge = 7 * 24 * time.Hour

// Ensure creates or updates the streams and buckets.
func Ensure(ctx context.Context, js jetstream.JetStream, o Options) error {
	streams := []jetstream.StreamConfig{
		{Name: StreamIn, Subjects: []string{InPrefix + ">"}, Retention: jetstream.WorkQueuePolicy, Description: "Breakwater work: bw.in.<route>"},
		{Name: StreamOut, Subjects: []string{OutPrefix + ">"}, Retention: jetstream.LimitsPolicy, MaxAge: o.OutMaxAge, Description: "Breakwater outcomes: bw.out.<route>"},
		{Name: StreamDLQ, Subjects: []string{DLQPrefix + ">"}, Retention: jetstream.LimitsPolicy, MaxAge: o.DLQMaxAge, Description: "Breakwater dead letters: bw.dlq.<route>"},
		{Name: StreamDLQData, Subjects: []string{DLQDataPrefix + ">"}, Retention: jetstream.LimitsPolicy, MaxAge: o.DLQMaxAge, Description: "Breakwater: original messages of dead letters too large to hold them (bw.dlqdata.<route>)"},
	}
	decAge, decBytes := o.DecisionsMaxAge, o.DecisionsMaxBytes
	if decAge <= 0 {
		decAge = 24 * time.Hour
	}
	if decBytes <= 0 {
		decBytes = 256 << 20
	}
	streams = append(streams, jetstream.StreamConfig{Name: StreamDecisions, Subjects: []string{DecisionsPrefix + ">"}, Retention: jetstream.LimitsPolicy,
		MaxAge: decAge, MaxBytes: decBytes, Discard: jetstream.DiscardOld, Description: "Breakwater: records of policy module decisions (bw.decisions.<route>)"})
	for _, sc := range streams {
		sc.Storage = jetstream.FileStorage
		sc.Replicas = o.Replicas
		sc.Duplicates = o.DuplicateWindow
		sc.AllowDirect = true
		if err := CreateOrUpdateStream(ctx, js, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	cacheAge := o.CacheMaxAge
	if cacheAge <= 0 {
		cacheAge = time.Hour
	}
	kvs := []jetstream.KeyValueConfig{
		{Bucket: BucketCache, History: 1, TTL: cacheAge, Description: "last-known-good values"},
		{Bucket: BucketFlags, History: 5, Description: "flags and kill switches"},
		{Bucket: BucketAttempts, History: 1, TTL: AttemptsMaxAge, Description: "error history of messages being retried"},
		{Bucket: BucketRoutes, History: 5, Description: "routes: one YAML document per route name (runtime route apply)"},
	}
	for _, kc := range kvs {
		kc.Storage = jetstream.FileStorage
		kc.Replicas = o.Replicas
		if _, err := CreateOrUpdateKeyValue(ctx, js, kc); err != nil {
			return fmt.Errorf("bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

// CreateOrUpdateStream creates the stream, or updates it if it exists. It
// creates first: instances started together on a fresh cluster race to
// make the same streams, and an update of a stream that is being created
// can go unanswered (the client's JetStream calls then time out), while
// two creates with one config both succeed.
func CreateOrUpdateStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	_, err := js.CreateStream(ctx, sc)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		_, err = js.UpdateStream(ctx, sc)
	}
	return err
}

// CreateOrUpdateKeyValue is CreateOrUpdateStream for a KV bucket.
func CreateOrUpdateKeyValue(ctx context.Context, js jetstream.JetStream, kc jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, kc)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.UpdateKeyValue(ctx, kc)
	}
	return kv, err
}

// CreateOrUpdateObjectStore is CreateOrUpdateStream for an object store.
func CreateOrUpdateObjectStore(ctx context.Context, js jetstream.JetStream, oc jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	obj, err := js.CreateObjectStore(ctx, oc)
	if errors.Is(err, jetstream.ErrBucketExists) {
		obj, err = js.UpdateObjectStore(ctx, oc)
	}
	return obj, err
}

// ConsumerOptions shape a route's durable consumer.
type ConsumerOptions struct {
	AckWait       time.Duration
	MaxAckPending int
	Replicas      int
	// MaxDeliver is the server's backstop on deliveries of one message
	// (the pipeline dead-letters earlier, at its own hard bound); 0: none.
	MaxDeliver int
}

func (o ConsumerOptions) maxDeliver() int {
	if o.MaxDeliver <= 0 {
		return -1
	}
	return o.MaxDeliver
}

// EnsureRouteConsumer creates or updates route's durable pull consumer.
func EnsureRouteConsumer(ctx context.Context, js jetstream.JetStream, route string, o ConsumerOptions) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, StreamIn, routeConsumerConfig(route, o))
	if err != nil {
		return nil, fmt.Errorf("route %q: consumer %s: %w", route, RouteConsumer(route), err)
	}
	return c, nil
}

func routeConsumerConfig(route string, o ConsumerOptions) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       RouteConsumer(route),
		Description:   "Breakwater route " + route,
		FilterSubject: In(route),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		// Attempts are counted and bounded by the pipeline, which
		// dead-letters a message at its hard bound; MaxDeliver is only the
		// backstop should even that fail (the message then stays in
		// BW_IN, undelivered, rather than looping).
		MaxDeliver:    o.maxDeliver(),
		MaxAckPending: o.MaxAckPending,
		Replicas:      o.Replicas,
	}
}

// DeleteRouteConsumer deletes route's durable consumer (none is fine).
func DeleteRouteConsumer(ctx context.Context, js jetstream.JetStream, route string) error {
	if err := js.DeleteConsumer(ctx, StreamIn, RouteConsumer(route)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("deleting consumer %s: %w", RouteConsumer(route), err)
	}
	return nil
}

// RemoveStaleRouteConsumers deletes route consumers whose route is no longer
// configured, so their subjects fall to the unrouted consumer.
func RemoveStaleRouteConsumers(ctx context.Context, js jetstream.JetStream, routes []string) error {
	s, err := js.Stream(ctx, StreamIn)
	if err != nil {
		return fmt.Errorf("stream %s: %w", StreamIn, err)
	}
	names := s.ConsumerNames(ctx)
	var stale []string
	for n := range names.Name() {
		if r, ok := strings.CutPrefix(n, "route_"); ok && !slices.Contains(routes, r) {
			stale = append(stale, n)
		}
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("listing consumers of %s: %w", StreamIn, err)
	}
	for _, n := range stale {
		if err := s.DeleteConsumer(ctx, n); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("deleting stale consumer %s: %w", n, err)
		}
	}
	return nil
}

// UnroutedSubjects lists bw.in subjects holding messages that no route in
// routes serves.
func UnroutedSubjects(ctx context.Context, js jetstream.JetStream, routes []string) ([]string, error) {
	s, err := js.Stream(ctx, StreamIn)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", StreamIn, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(InPrefix+">"))
	if err != nil {
		return nil, fmt.Errorf("stream %s subjects: %w", StreamIn, err)
	}
	var out []string
	for subj := range info.State.Subjects {
		if r := RouteOfIn(subj); r == "" || !slices.Contains(routes, r) {
			out = append(out, subj)
		}
	}
	slices.Sort(out)
	return out, nil
}

// RecreateUnroutedConsumer makes the unrouted consumer anew for subjects
// (exact subjects, so it never overlaps a route consumer on the work-queue
// stream): messages it had delivered and not acked stay in the stream for
// the new one. With no subjects it returns nil, nil.
func RecreateUnroutedConsumer(ctx context.Context, js jetstream.JetStream, subjects []string, o ConsumerOptions) (jetstream.Consumer, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	if err := js.DeleteConsumer(ctx, StreamIn, UnroutedConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("consumer %s: %w", UnroutedConsumer, err)
	}
	c, err := js.CreateConsumer(ctx, StreamIn, jetstream.ConsumerConfig{
		Durable:        UnroutedConsumer,
		Description:    "Breakwater: messages on subjects no route serves",
		FilterSubjects: subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        o.AckWait,
		MaxDeliver:     o.maxDeliver(),
		Replicas:       o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s for %d subjects: %w", UnroutedConsumer, len(subjects), err)
	}
	return c, nil
}
