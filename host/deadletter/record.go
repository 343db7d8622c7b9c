package deadletter

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// Record is a dead letter: everything needed to understand what went wrong
// and to replay the message.
type Record struct {
	Route     string `json:"route"`
	Subject   string `json:"subject"`    // where the message was published
	MessageID string `json:"message_id"` // the producer's Nats-Msg-Id, else the stream sequence
	StreamSeq uint64 `json:"stream_seq"` // sequence in BW_IN
	// FirstSeen is when the message was published; DeadAt when it was parked.
	FirstSeen time.Time `json:"first_seen"`
	DeadAt    time.Time `json:"dead_at"`
	Attempts  uint32    `json:"attempts"`
	// Reason says why the message was parked (the policies' reasons).
	Reason string `json:"reason"`
	// Errors holds every failed attempt, oldest first.
	Errors  []abi.AttemptError  `json:"errors"`
	Headers map[string][]string `json:"headers,omitempty"`
	Payload []byte              `json:"payload"` // base64 in JSON
	// Original, when set, holds the original message (headers and
	// payload) by reference: the record with them inline would have been
	// larger than the server's max_payload. Headers and Payload are then
	// empty; replay reads the original from there.
	Original *Ref `json:"original,omitempty"`
}

// Ref names a message kept in a stream.
type Ref struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Size   int    `json:"size"` // payload bytes
}

// Marshal encodes r as JSON.
func (r *Record) Marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil { // only unsupported types fail; Record has none
		panic(fmt.Sprintf("deadletter: marshal: %v", err))
	}
	return b
}

// Unmarshal decodes a record, saying what was wrong with it.
func Unmarshal(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("dead-letter record is not valid JSON: %w", err)
	}
	if r.Route == "" || r.Subject == "" {
		return nil, fmt.Errorf("dead-letter record lacks route or subject")
	}
	return &r, nil
}

// LastError returns the most recent attempt error (zero when none).
func (r *Record) LastError() abi.AttemptError {
	if len(r.Errors) == 0 {
		return abi.AttemptError{}
	}
	return r.Errors[len(r.Errors)-1]
}
