package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Store reads and writes last-known-good values.
type Store struct {
	kv      jetstream.KeyValue
	now     func() time.Time
	timeout time.Duration
}

// New returns a Store on kv (the bw_cache bucket); every read and write
// gives up after timeout.
func New(kv jetstream.KeyValue, timeout time.Duration) *Store {
	return &Store{kv: kv, now: time.Now, timeout: timeout}
}

// Entry is a cached value.
type Entry struct {
	Value []byte
	Age   time.Duration
}

// Put stores value as the last-known-good answer of route for key.
func (s *Store) Put(ctx context.Context, route, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.kv.Put(ctx, Key(route, key), value); err != nil {
		return fmt.Errorf("cache put %s/%s: %w", route, key, err)
	}
	return nil
}

// Get returns the value of route for key if one is stored and no older
// than ttl; ok is false otherwise.
func (s *Store) Get(ctx context.Context, route, key string, ttl time.Duration) (e Entry, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	kve, err := s.kv.Get(ctx, Key(route, key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("cache get %s/%s: %w", route, key, err)
	}
	age := s.now().Sub(kve.Created())
	if age < 0 {
		age = 0
	}
	if ttl > 0 && age > ttl {
		return Entry{Age: age}, false, nil
	}
	return Entry{Value: kve.Value(), Age: age}, true, nil
}

// MaxEscapedKey bounds the escaped part of a KV key; a longer key is hashed.
const MaxEscapedKey = 160

// Key maps a route and a rendered cache key (untrusted: it comes from the
// message) to a KV key that is always valid and short: characters a KV key
// cannot hold are escaped as =XX, and a key whose escaped form is longer
// than MaxEscapedKey becomes "==" and its SHA-256 in hex. Distinct keys stay
// distinct: an escaped key never holds "==" ('=' itself is escaped).
func Key(route, key string) string {
	var b strings.Builder
	b.Grow(len(route) + 1 + min(len(key), MaxEscapedKey))
	b.WriteString(route)
	b.WriteByte('.')
	n := 0
	for i := 0; i < len(key) && n <= MaxEscapedKey; i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '/':
			b.WriteByte(c)
			n++
		default:
			fmt.Fprintf(&b, "=%02X", c)
			n += 3
		}
	}
	if n > MaxEscapedKey {
		sum := sha256.Sum256([]byte(key))
		return route + ".==" + hex.EncodeToString(sum[:])
	}
	return b.String()
}
