package deadletter

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
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/cache"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// The attempt history of a message being worked on, as the pipeline keeps
// it in KV bw_attempts (host/pipeline writes it; the operator tools read
// it).

// History is what bw_attempts holds for one message.
type History struct {
	// Errors holds every failed attempt, oldest first, and the internal
	// failures (kind internal) between them.
	Errors []abi.AttemptError `json:"errors"`
	// Result is a terminal outcome a delivery reached but could not
	// publish; the next delivery publishes it.
	Result *SavedResult `json:"result,omitempty"`
}

// SavedResult is a terminal outcome kept for the next delivery.
type SavedResult struct {
	SavedAt     time.Time          `json:"saved_at"`
	Outcome     string             `json:"outcome"`
	Payload     []byte             `json:"payload,omitempty"`
	StubHeaders map[string]string  `json:"stub_headers,omitempty"`
	RespHeaders map[string]string  `json:"response_headers,omitempty"`
	CacheAgeMs  int64              `json:"cache_age_ms,omitempty"`
	Errors      []abi.AttemptError `json:"errors,omitempty"`
	Attempts    uint32             `json:"attempts"`
	Reason      string             `json:"reason,omitempty"`
	Target      string             `json:"target,omitempty"`
}

// TargetCalls counts the failed attempts the target (or a guard in front
// of it) gave, leaving out the runtime's internal failures.
func (h *History) TargetCalls() int { return TargetCalls(h.Errors) }

// TargetCalls counts the attempts in errs: failures the target (or a guard
// in front of it) gave, not the runtime's internal failures.
func TargetCalls(errs []abi.AttemptError) int {
	// Attempts are numbered from 1 and recorded in order; one attempt may
	// hold several failures (one per target a failover tried). Number 0 is
	// a failure before any attempt (a sync call answered from the fallback
	// alone).
	n, last := 0, uint32(0)
	for _, e := range errs {
		if e.Kind != abi.ErrorInternal && e.Attempt != 0 && e.Attempt != last {
			n++
			last = e.Attempt
		}
	}
	return n
}

// HistoryKey is the bw_attempts key of the message with BW_IN sequence seq
// published on bw.in.<routeToken> (host/pipeline historyKey).
func HistoryKey(routeToken string, seq uint64) string {
	return cache.Key(routeToken, strconv.FormatUint(seq, 10))
}

// ParseHistory decodes a bw_attempts value: {"errors":[…],"result":{…}},
// or, as older releases wrote it, a bare JSON array of errors.
func ParseHistory(v []byte) (*History, error) {
	var h History
	var err error
	if bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) {
		err = json.Unmarshal(v, &h.Errors)
	} else {
		err = json.Unmarshal(v, &h)
	}
	if err != nil {
		return nil, fmt.Errorf("attempt history is not valid JSON: %w", err)
	}
	return &h, nil
}

// LoadHistory reads the attempt history of BW_IN message seq of route. It
// returns nil, nil when there is none (no attempt failed yet).
func LoadHistory(ctx context.Context, js jetstream.JetStream, route string, seq uint64) (*History, error) {
	kv, err := js.KeyValue(ctx, topology.BucketAttempts)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("attempt history: bucket %s: %w", topology.BucketAttempts, err)
	}
	key := HistoryKey(route, seq)
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("attempt history %s: %w", key, err)
	}
	h, err := ParseHistory(e.Value())
	if err != nil {
		return nil, fmt.Errorf("attempt history %s: %w", key, err)
	}
	return h, nil
}

// ErrNotInFlight says a message is not on BW_IN: it reached its outcome
// (or was never published, or the scan bound was reached first).
var ErrNotInFlight = errors.New("not in flight")

// FindInFlight looks for the pending message of route whose Nats-Msg-Id is
// id on BW_IN (a work queue: only messages not yet done are there), reading
// at most maxScan messages of bw.in.<route>. An id of digits also matches
// the BW_IN sequence of a message published without an id. It returns
// ErrNotInFlight (wrapped) when none matches.
func FindInFlight(ctx context.Context, js jetstream.JetStream, route, id string, maxScan int) (*jetstream.RawStreamMsg, error) {
	s, err := js.Stream(ctx, topology.StreamIn)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", topology.StreamIn, err)
	}
	subj := topology.In(route)
	if seq, perr := strconv.ParseUint(id, 10, 64); perr == nil && seq > 0 {
		m, err := s.GetMsg(ctx, seq)
		if err == nil && m.Subject == subj && m.Header.Get(headers.MsgID) == "" {
			return m, nil
		}
	}
	// A work-queue stream admits no second consumer on the route's subject:
	// read message by message with a subject filter instead.
	seq := uint64(1)
	for n := 0; n < maxScan; n++ {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, fmt.Errorf("message %q of route %q: %w", id, route, ErrNotInFlight)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", subj, err)
		}
		if m.Header.Get(headers.MsgID) == id {
			return m, nil
		}
		seq = m.Sequence + 1
	}
	return nil, fmt.Errorf("message %q of route %q: %w within the first %d pending messages (raise --max-scan)", id, route, ErrNotInFlight, maxScan)
}
