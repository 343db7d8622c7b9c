package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// Parked is a dead letter as stored: its record and its sequence in BW_DLQ.
type Parked struct {
	Seq     uint64
	Subject string // bw.dlq.<route>
	Record  *Record
	// Err is set, with Record nil, when the stored message is not a record
	// (it is listed so an operator sees it, never skipped).
	Err error
}

// List returns the dead letters of route, oldest first, at most limit (0: all).
func List(ctx context.Context, js jetstream.JetStream, route string, limit int) ([]Parked, error) {
	return list(ctx, js, route, topology.DLQ(route), limit)
}

// ListAll returns the dead letters of every route, oldest first, at most
// limit (0: all). Each record names its route.
func ListAll(ctx context.Context, js jetstream.JetStream, limit int) ([]Parked, error) {
	return list(ctx, js, "every route", topology.DLQPrefix+">", limit)
}

func list(ctx context.Context, js jetstream.JetStream, route, subject string, limit int) ([]Parked, error) {
	s, err := js.Stream(ctx, topology.StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("dead letters of %q: stream %s: %w (runtime serve creates it: is this config's NATS the runtime's?)", route, topology.StreamDLQ, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead letters of %q: %w", route, err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return nil, fmt.Errorf("dead letters of %q: %w", route, err)
	}
	var out []Parked
	for limit == 0 || len(out) < limit {
		msg, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("dead letters of %q: reading: %w", route, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return out, fmt.Errorf("dead letters of %q: %w", route, err)
		}
		rec, rerr := Unmarshal(msg.Data())
		out = append(out, Parked{Seq: meta.Sequence.Stream, Subject: msg.Subject(), Record: rec, Err: rerr})
		if meta.NumPending == 0 {
			break
		}
	}
	return out, nil
}

// Replay puts parked messages of route back on their bw.in subject with their
// original payload and headers, then removes them from the DLQ. With ids
// empty every dead letter of route is replayed; otherwise only those whose
// message id or DLQ sequence is listed. It returns how many were replayed;
// on error, those already replayed stay replayed and the rest stay parked.
func Replay(ctx context.Context, js jetstream.JetStream, route string, ids []string) (int, error) {
	parked, err := List(ctx, js, route, 0)
	if err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	s, err := js.Stream(ctx, topology.StreamDLQ)
	if err != nil {
		return 0, fmt.Errorf("replay %q: %w", route, err)
	}
	n := 0
	for _, p := range parked {
		if p.Record == nil {
			continue // not a record: left for an operator to inspect
		}
		seq := strconv.FormatUint(p.Seq, 10)
		if len(want) > 0 && !want[p.Record.MessageID] && !want[seq] {
			continue
		}
		m := nats.NewMsg(p.Record.Subject)
		m.Data = p.Record.Payload
		for k, v := range p.Record.Headers {
			m.Header[k] = v
		}
		if ref := p.Record.Original; ref != nil {
			orig, err := original(ctx, js, ref)
			if err != nil {
				return n, fmt.Errorf("replay %q: dead letter %d: %w", route, p.Seq, err)
			}
			m.Data, m.Header = orig.Data, orig.Header
		}
		// The producer's Nats- headers told the server what to expect of
		// the first publish (a stream, a last sequence, a TTL); they would
		// make this one fail. A fresh id per replay so de-duplication does
		// not swallow it, yet a replay retried after a crash is still
		// published once.
		for k := range m.Header {
			if headers.NATS(k) {
				delete(m.Header, k)
			}
		}
		m.Header.Set(headers.MsgID, fmt.Sprintf("%s-replay-%d", p.Record.MessageID, p.Seq))
		m.Header.Set(headers.Replayed, seq)
		// The producer's id, through any number of replays: a replayed
		// message that dies again carries it in its record's headers.
		if m.Header.Get(headers.ReplayOf) == "" {
			m.Header.Set(headers.ReplayOf, p.Record.MessageID)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return n, fmt.Errorf("replay %q: publishing dead letter %d to %s: %w", route, p.Seq, p.Record.Subject, err)
		}
		if err := s.DeleteMsg(ctx, p.Seq); err != nil && !gone(err) {
			return n, fmt.Errorf("replay %q: removing dead letter %d after replaying it: %w", route, p.Seq, err)
		}
		n++
	}
	if len(want) > 0 && n == 0 {
		return 0, fmt.Errorf("replay %q: no dead letter matches %v (see `runtime dlq list %s`)", route, ids, route)
	}
	return n, nil
}

// original reads the original message a record refers to.
func original(ctx context.Context, js jetstream.JetStream, ref *Ref) (*nats.Msg, error) {
	s, err := js.Stream(ctx, ref.Stream)
	if err != nil {
		return nil, fmt.Errorf("original message in %s: %w", ref.Stream, err)
	}
	raw, err := s.GetMsg(ctx, ref.Seq)
	if err != nil {
		return nil, fmt.Errorf("original message %s/%d: %w (it expires with streams.dlq_max_age)", ref.Stream, ref.Seq, err)
	}
	h := nats.Header{}
	for k, v := range raw.Header {
		h[k] = v
	}
	return &nats.Msg{Subject: raw.Subject, Header: h, Data: raw.Data}, nil
}

// Route returns the route a parked message belongs to (from its subject).
func (p Parked) Route() string { return strings.TrimPrefix(p.Subject, topology.DLQPrefix) }

// Find returns the dead letters of route that ref names: by DLQ sequence
// or by message id (several when one id was dead-lettered more than once).
func Find(ctx context.Context, js jetstream.JetStream, route, ref string) ([]Parked, error) {
	parked, err := List(ctx, js, route, 0)
	if err != nil {
		return nil, err
	}
	var out []Parked
	for _, p := range parked {
		if strconv.FormatUint(p.Seq, 10) == ref || (p.Record != nil && p.Record.MessageID == ref) {
			out = append(out, p)
		}
	}
	return out, nil
}

// gone reports whether a DeleteMsg failed because the message is not
// there (another operator removed or replayed it first): the server
// answers JSStreamMsgDeleteFailed (10057) "no message found", which
// nats.go wraps in ErrMsgDeleteUnsuccessful rather than ErrMsgNotFound.
func gone(err error) bool {
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == 10057 || apiErr.Code == 404
	}
	return errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && strings.Contains(err.Error(), "no message found")
}

// Remove deletes parked messages from BW_DLQ, and the originals of
// oversized ones from BW_DLQ_DATA. It returns how many were removed.
func Remove(ctx context.Context, js jetstream.JetStream, parked []Parked) (int, error) {
	s, err := js.Stream(ctx, topology.StreamDLQ)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", topology.StreamDLQ, err)
	}
	n := 0
	for _, p := range parked {
		if err := s.DeleteMsg(ctx, p.Seq); err != nil && !gone(err) {
			return n, fmt.Errorf("removing dead letter %d: %w", p.Seq, err)
		}
		n++
		if p.Record != nil && p.Record.Original != nil {
			removeOriginal(ctx, js, p.Record.Original)
		}
	}
	return n, nil
}

// Purge removes every dead letter of route and the kept originals of its
// oversized ones.
func Purge(ctx context.Context, js jetstream.JetStream, route string) error {
	s, err := js.Stream(ctx, topology.StreamDLQ)
	if err != nil {
		return fmt.Errorf("stream %s: %w", topology.StreamDLQ, err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(topology.DLQ(route))); err != nil {
		return fmt.Errorf("purging %s: %w", topology.DLQ(route), err)
	}
	if d, err := js.Stream(ctx, topology.StreamDLQData); err == nil {
		if err := d.Purge(ctx, jetstream.WithPurgeSubject(topology.DLQData(route))); err != nil {
			return fmt.Errorf("purging %s: %w", topology.DLQData(route), err)
		}
	}
	return nil
}

// removeOriginal deletes an oversized dead letter's original (best effort:
// it expires with streams.dlq_max_age anyway).
func removeOriginal(ctx context.Context, js jetstream.JetStream, ref *Ref) {
	if s, err := js.Stream(ctx, ref.Stream); err == nil {
		_ = s.DeleteMsg(ctx, ref.Seq)
	}
}
