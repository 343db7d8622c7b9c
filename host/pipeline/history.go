package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/cache"
)

// history keeps what a message being worked on has been through in the KV
// bucket bw_attempts, so a dead letter written after a restart still holds
// every attempt, and a redelivery after an internal failure neither counts
// that failure as an attempt nor calls the target again for an outcome it
// already has. It is written only on failures and removed at the outcome.
// Every call is bounded by timeout.
type history struct {
	kv      jetstream.KeyValue
	timeout time.Duration
}

// record is what bw_attempts holds for one message.
type record struct {
	// Errors holds every failed attempt, oldest first, and the internal
	// failures (kind internal) between them.
	Errors []abi.AttemptError `json:"errors"`
	// Result is a terminal outcome a delivery reached but could not
	// publish; the next delivery publishes it instead of calling the
	// target again, if it comes within the duplicate window.
	Result *savedResult `json:"result,omitempty"`
}

// savedResult is a terminal outcome kept for the next delivery.
type savedResult struct {
	SavedAt     time.Time          `json:"saved_at"`
	Outcome     string             `json:"outcome"`
	Payload     []byte             `json:"payload,omitempty"`
	StubHeaders map[string]string  `json:"stub_headers,omitempty"`
	RespHeaders map[string]string  `json:"response_headers,omitempty"`
	CacheAgeMs  int64              `json:"cache_age_ms,omitempty"`
	Errors      []abi.AttemptError `json:"errors,omitempty"`
	Attempts    uint32             `json:"attempts"`
	Reason      string             `json:"reason,omitempty"`
}

func saveResult(t terminal) *savedResult {
	return &savedResult{SavedAt: time.Now(), Outcome: t.outcome, Payload: t.payload, StubHeaders: t.stubHeaders, RespHeaders: t.respHeaders,
		CacheAgeMs: t.cacheAge.Milliseconds(), Errors: t.errs, Attempts: t.attempts, Reason: t.reason}
}

func (s *savedResult) terminal() terminal {
	return terminal{outcome: s.Outcome, payload: s.Payload, stubHeaders: s.StubHeaders, respHeaders: s.RespHeaders, cacheAge: time.Duration(s.CacheAgeMs) * time.Millisecond,
		errs: s.Errors, attempts: s.Attempts, reason: s.Reason, cleanHistory: true}
}

// targetCalls counts the attempts in errs: failures the target (or a
// guard in front of it) gave, not the runtime's internal failures.
func targetCalls(errs []abi.AttemptError) uint32 {
	n := uint32(0)
	for _, e := range errs {
		if e.Kind != abi.ErrorInternal {
			n++
		}
	}
	return n
}

func historyKey(routeToken string, seq uint64) string {
	return cache.Key(routeToken, strconv.FormatUint(seq, 10))
}

func (h history) load(ctx context.Context, key string) (record, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	e, err := h.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, nil
	}
	if err != nil {
		return record{}, fmt.Errorf("attempt history %s: %w", key, err)
	}
	var rec record
	v := e.Value()
	if bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) { // written by an older release: errors only
		err = json.Unmarshal(v, &rec.Errors)
	} else {
		err = json.Unmarshal(v, &rec)
	}
	if err != nil {
		return record{}, fmt.Errorf("attempt history %s: %w", key, err)
	}
	return rec, nil
}

func (h history) save(ctx context.Context, key string, rec record) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	b, _ := json.Marshal(rec)
	if _, err := h.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("attempt history %s: %w", key, err)
	}
	return nil
}

func (h history) remove(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if err := h.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("attempt history %s: %w", key, err)
	}
	return nil
}
