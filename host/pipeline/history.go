package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/cache"
)

// history keeps the error history of messages being retried in the KV
// bucket bw_attempts, so a dead letter written after a restart still holds
// every attempt. It is written only on failures and removed at the outcome.
type history struct{ kv jetstream.KeyValue }

func historyKey(routeToken string, seq uint64) string {
	return cache.Key(routeToken, strconv.FormatUint(seq, 10))
}

func (h history) load(ctx context.Context, key string) ([]abi.AttemptError, error) {
	e, err := h.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("attempt history %s: %w", key, err)
	}
	var errs []abi.AttemptError
	if err := json.Unmarshal(e.Value(), &errs); err != nil {
		return nil, fmt.Errorf("attempt history %s: %w", key, err)
	}
	return errs, nil
}

func (h history) save(ctx context.Context, key string, errs []abi.AttemptError) error {
	b, _ := json.Marshal(errs)
	if _, err := h.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("attempt history %s: %w", key, err)
	}
	return nil
}

func (h history) remove(ctx context.Context, key string) error {
	if err := h.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("attempt history %s: %w", key, err)
	}
	return nil
}
