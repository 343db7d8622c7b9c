package flagstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/topology"
)

var keyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$`)

// ErrNotFound is returned (wrapped) by Get and Delete for unknown keys.
var ErrNotFound = errors.New("flag not set")

// Flags is the live view of bw_flags. Safe for concurrent use.
type Flags struct {
	kv      jetstream.KeyValue
	watcher jetstream.KeyWatcher
	log     *slog.Logger
	onSet   func(key, value string, deleted bool)

	mu    sync.RWMutex
	vals  map[string]string
	ready chan struct{}
	done  chan struct{}
}

// Options configure Open.
type Options struct {
	Logger *slog.Logger
	// OnChange, if set, hears every change the watcher applies.
	OnChange func(key, value string, deleted bool)
}

// Open binds the bw_flags bucket (topology.Ensure creates it) and starts
// watching it. It returns once the current values are loaded.
func Open(ctx context.Context, js jetstream.JetStream, o Options) (*Flags, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	kv, err := js.KeyValue(ctx, topology.BucketFlags)
	if err != nil {
		return nil, fmt.Errorf("flags: bucket %s: %w", topology.BucketFlags, err)
	}
	// The watcher outlives ctx: it runs until Close.
	w, err := kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("flags: watching %s: %w", topology.BucketFlags, err)
	}
	f := &Flags{kv: kv, watcher: w, log: o.Logger, onSet: o.OnChange, vals: map[string]string{}, ready: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	select {
	case <-f.ready:
		return f, nil
	case <-ctx.Done():
		_ = w.Stop()
		return nil, fmt.Errorf("flags: loading current values: %w", ctx.Err())
	}
}

func (f *Flags) run() {
	defer close(f.done)
	readyOnce := sync.OnceFunc(func() { close(f.ready) })
	defer readyOnce()
	for e := range f.watcher.Updates() {
		if e == nil { // initial values delivered
			readyOnce()
			continue
		}
		deleted := e.Operation() != jetstream.KeyValuePut
		f.mu.Lock()
		if deleted {
			delete(f.vals, e.Key())
		} else {
			f.vals[e.Key()] = string(e.Value())
		}
		f.mu.Unlock()
		f.log.Info("flag changed", slog.String("key", e.Key()), slog.String("value", string(e.Value())), slog.Bool("deleted", deleted))
		if f.onSet != nil {
			f.onSet(e.Key(), string(e.Value()), deleted)
		}
	}
}

// Close stops watching.
func (f *Flags) Close() {
	_ = f.watcher.Stop()
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
	}
}

// Enabled reports whether route and its target are switched on.
func (f *Flags) Enabled(route, target string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.vals[route+".enabled"] != "false" && f.vals["target."+target+".enabled"] != "false"
}

// ForRoute returns the flags route's policy modules see: global.<name> and
// <route>.<name> (the latter wins), prefixes stripped.
func (f *Flags) ForRoute(route string) map[string]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out map[string]string
	add := func(prefix string) {
		for k, v := range f.vals {
			if name, ok := strings.CutPrefix(k, prefix); ok {
				if out == nil {
					out = map[string]string{}
				}
				out[name] = v
			}
		}
	}
	add("global.")
	add(route + ".")
	return out
}

// Snapshot returns every flag.
func (f *Flags) Snapshot() map[string]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]string, len(f.vals))
	for k, v := range f.vals {
		out[k] = v
	}
	return out
}

// Check validates a key and value.
func Check(key, value string) error {
	if !keyRE.MatchString(key) {
		return fmt.Errorf("flag key %q: use <route>.<name>, target.<target>.enabled or global.<name>, with letters, digits, - and _", key)
	}
	if strings.HasSuffix(key, ".enabled") && value != "true" && value != "false" {
		return fmt.Errorf("flag %s: value %q: an .enabled switch takes true or false", key, value)
	}
	return nil
}

// Set stores a flag (validated) in the bucket.
func Set(ctx context.Context, kv jetstream.KeyValue, key, value string) error {
	if err := Check(key, value); err != nil {
		return err
	}
	if _, err := kv.PutString(ctx, key, value); err != nil {
		return fmt.Errorf("flag %s: %w", key, err)
	}
	return nil
}

// Get reads a flag from the bucket.
func Get(ctx context.Context, kv jetstream.KeyValue, key string) (string, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("flag %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("flag %s: %w", key, err)
	}
	return string(e.Value()), nil
}

// Delete removes a flag (its default applies again).
func Delete(ctx context.Context, kv jetstream.KeyValue, key string) error {
	if _, err := Get(ctx, kv, key); err != nil {
		return err
	}
	if err := kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("flag %s: %w", key, err)
	}
	return nil
}

// List returns every flag, sorted by key.
func List(ctx context.Context, kv jetstream.KeyValue) ([][2]string, error) {
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	var out [][2]string
	for k := range keys.Keys() {
		v, err := Get(ctx, kv, k)
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}

// Bucket returns the bw_flags bucket for the operator functions above.
func Bucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, topology.BucketFlags)
	if err != nil {
		return nil, fmt.Errorf("flags: bucket %s: %w (has `runtime serve` run once against this server?)", topology.BucketFlags, err)
	}
	return kv, nil
}
