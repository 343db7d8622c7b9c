package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// ErrNoOutcome says no outcome of a message was found on bw.out.<route>:
// it is still being worked on, or its outcome expired (streams.out_max_age).
var ErrNoOutcome = errors.New("no outcome found")

// OutcomeID is the Nats-Msg-Id of the outcome of BW_IN message seq of
// route: "<route>:<seq>" (host/pipeline claimID).
func OutcomeID(route string, seq uint64) string {
	return route + ":" + strconv.FormatUint(seq, 10)
}

// outcomeSpans are how many of the newest BW_OUT sequences, in turn,
// Outcome reads (0: from the first).
var outcomeSpans = []uint64{64, 1024, 16384, 262144, 4194304, 0}

// Outcome finds the stored outcome of the message published on
// bw.in.<route> with BW_IN sequence seq (a duplicate publish's PubAck
// names it). It reads bw.out.<route> backwards from the end in growing
// spans of stream sequences (each span oldest first), at most maxScan
// messages of the route in all (0: 100000), within ctx. It returns
// ErrNoOutcome (wrapped) when none is found.
func (c *Client) Outcome(ctx context.Context, route string, seq uint64, maxScan int) (*Result, error) {
	return FindOutcome(ctx, c.js, route, seq, maxScan)
}

// FindOutcome is Client.Outcome over a JetStream context.
func FindOutcome(ctx context.Context, js jetstream.JetStream, route string, seq uint64, maxScan int) (*Result, error) {
	if maxScan <= 0 {
		maxScan = 100000
	}
	s, err := js.Stream(ctx, topology.StreamOut)
	if err != nil {
		return nil, fmt.Errorf("breakwater client: outcome of %s seq %d: stream %s: %w", route, seq, topology.StreamOut, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("breakwater client: outcome of %s seq %d: %w", route, seq, err)
	}
	want := OutcomeID(route, seq)
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, fmt.Errorf("breakwater client: outcome %s: %w (%s is empty)", want, ErrNoOutcome, topology.StreamOut)
	}
	until := last + 1 // the first sequence already read
	scanned := 0
	for _, span := range outcomeSpans {
		start := first
		if span > 0 && last >= first+span {
			start = last - span + 1
		}
		cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{topology.Out(route)},
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start}
		found, n, err := scanOut(ctx, s, cfg, want, until, maxScan-scanned)
		scanned += n
		if err != nil || found != nil {
			return found, err
		}
		if scanned >= maxScan {
			return nil, fmt.Errorf("breakwater client: outcome %s on %s: %w among the newest %d outcomes of the route", want, topology.Out(route), ErrNoOutcome, scanned)
		}
		if start == first {
			break
		}
		until = start
	}
	return nil, fmt.Errorf("breakwater client: outcome %s on %s: %w", want, topology.Out(route), ErrNoOutcome)
}

// scanOut reads from cfg's start up to (not including) stream sequence
// until, at most limit messages.
func scanOut(ctx context.Context, s jetstream.Stream, cfg jetstream.OrderedConsumerConfig, want string, until uint64, limit int) (*Result, int, error) {
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("breakwater client: reading %s: %w", topology.StreamOut, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("breakwater client: reading %s: %w", topology.StreamOut, err)
	}
	pending := info.NumPending
	n := 0
	for pending > 0 && n < limit {
		batch, err := c.Fetch(min(int(pending), limit-n, 256), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, n, fmt.Errorf("breakwater client: reading %s: %w", topology.StreamOut, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			if meta.Sequence.Stream >= until {
				return nil, n, nil // the newer span was read already
			}
			n++
			if m.Headers().Get(headers.MsgID) == want {
				h := nats.Header{}
				for k, v := range m.Headers() {
					h[k] = v
				}
				return parse(h, m.Data()), n, nil
			}
			pending = meta.NumPending
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, n, fmt.Errorf("breakwater client: reading %s: %w", topology.StreamOut, err)
		}
		if got == 0 {
			break
		}
	}
	return nil, n, nil
}
