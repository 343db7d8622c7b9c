package decisionlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Filter selects records. Zero fields select everything.
type Filter struct {
	Route  string
	Module string
	Role   string
	// Since selects records stored at or after it (zero: all kept).
	Since time.Time
	// Limit stops List after that many records (0: no limit).
	Limit int
}

func (f Filter) match(r *Record) bool {
	return (f.Module == "" || r.Module == f.Module) && (f.Role == "" || r.Role == f.Role)
}

func (f Filter) consumer() jetstream.OrderedConsumerConfig {
	c := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if f.Route != "" {
		c.FilterSubjects = []string{Subject(f.Route)}
	}
	if !f.Since.IsZero() {
		since := f.Since
		c.DeliverPolicy, c.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	return c
}

// List returns the stored records f selects, oldest first: those stored
// when it started, read until then (or until ctx ends, or f.Limit).
// Records that do not decode are skipped and counted in skipped.
func List(ctx context.Context, js jetstream.JetStream, f Filter) (recs []*Record, skipped int, err error) {
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w (is decision recording on? see docs/modules.md, section 5)", Stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", Stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, 0, nil
	}
	c, err := s.OrderedConsumer(ctx, f.consumer())
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", Stream, err)
	}
	for {
		batch, err := c.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return recs, skipped, fmt.Errorf("reading %s: %w", Stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			var r Record
			if err := json.Unmarshal(m.Data(), &r); err != nil {
				skipped++
			} else if f.match(&r) {
				recs = append(recs, &r)
				if f.Limit > 0 && len(recs) >= f.Limit {
					return recs, skipped, nil
				}
			}
			if md.Sequence.Stream >= last {
				return recs, skipped, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return recs, skipped, fmt.Errorf("reading %s: %w", Stream, err)
		}
		if n == 0 {
			return recs, skipped, nil // nothing more within a second: the rest expired
		}
		if ctx.Err() != nil {
			return recs, skipped, ctx.Err()
		}
	}
}

// Tail calls fn with each record f selects as it is stored, from now on
// (or from f.Since), until ctx ends or fn returns false.
func Tail(ctx context.Context, js jetstream.JetStream, f Filter, fn func(*Record) bool) error {
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w (is decision recording on? see docs/modules.md, section 5)", Stream, err)
	}
	cfg := f.consumer()
	if f.Since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("stream %s: %w", Stream, err)
	}
	for ctx.Err() == nil {
		m, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// No record within the wait, or a passing error: look again,
			// never faster than a few times a second.
			select {
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		var r Record
		if json.Unmarshal(m.Data(), &r) != nil || !f.match(&r) {
			continue
		}
		if !fn(&r) {
			return nil
		}
	}
	return nil
}
