package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/internal/attempt"
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

// record is what bw_attempts holds for one message, and savedResult a
// terminal outcome kept for the next delivery (host/deadletter owns the
// format: the operator tools read it too).
type (
	record      = deadletter.History
	savedResult = deadletter.SavedResult
)

func saveResult(r *attempt.Result) *savedResult {
	return &savedResult{SavedAt: time.Now(), Outcome: r.Outcome, Payload: r.Payload, StubHeaders: r.StubHeaders, RespHeaders: r.RespHeaders,
		CacheAgeMs: r.CacheAge.Milliseconds(), Errors: r.Errors, Attempts: r.Attempts, Reason: r.Reason, Target: r.Target}
}

func restoreResult(s *savedResult) *attempt.Result {
	return &attempt.Result{Outcome: s.Outcome, Payload: s.Payload, StubHeaders: s.StubHeaders, RespHeaders: s.RespHeaders, CacheAge: time.Duration(s.CacheAgeMs) * time.Millisecond,
		Errors: s.Errors, Attempts: s.Attempts, Reason: s.Reason, Target: s.Target}
}

func historyKey(routeToken string, seq uint64) string { return deadletter.HistoryKey(routeToken, seq) }

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
	rec, err := deadletter.ParseHistory(e.Value())
	if err != nil {
		return record{}, fmt.Errorf("attempt history %s: %w", key, err)
	}
	return *rec, nil
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
