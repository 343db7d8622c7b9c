package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// terminal is a message's final outcome, about to be published.
type terminal struct {
	outcome     string // headers.Outcome*
	payload     []byte // result, cached value or stub (not for dead)
	stubHeaders map[string]string
	cacheAge    time.Duration
	errs        []abi.AttemptError // every failed attempt, oldest first
	attempts    uint32             // calls made to the target
	reason      string
	// cleanHistory removes the message's attempt history once it is done.
	cleanHistory bool
}

// finish publishes t exactly once and acks the message.
//
// The outcome on bw.out carries the Nats-Msg-Id "<route>:<stream seq>", so
// when a crash falls between publishing and acking, the redelivered message
// finds its outcome already claimed (a duplicate publish) and only completes
// what the first delivery started: the dead letter, when the claimed outcome
// was dead, then the ack. One message, one terminal outcome.
func (p *Pipeline) finish(ctx context.Context, j *job, route string, t terminal) {
	if route == "" {
		route = j.token
	}
	out := p.outcomeMsg(j, route, t)
	ack, err := p.publish(ctx, out)
	if err != nil {
		p.retryLater(j, route, fmt.Errorf("publishing outcome: %w", err))
		return
	}
	if ack.Duplicate {
		claimed, err := p.outs.GetMsg(ctx, ack.Sequence)
		if err != nil {
			p.retryLater(j, route, fmt.Errorf("reading claimed outcome %d: %w", ack.Sequence, err))
			return
		}
		p.log.Info("outcome already published by an earlier delivery; completing it", slog.String("route", route),
			slog.String("message_id", j.id), slog.String("outcome", claimed.Header.Get(headers.Outcome)))
		out = &nats.Msg{Subject: claimed.Subject, Header: claimed.Header, Data: claimed.Data}
		t.outcome = claimed.Header.Get(headers.Outcome)
	}
	if t.outcome == headers.OutcomeDead {
		dl := &nats.Msg{Subject: topology.DLQ(route), Header: out.Header, Data: out.Data}
		if _, err := p.publish(ctx, dl); err != nil {
			p.retryLater(j, route, fmt.Errorf("publishing dead letter: %w", err))
			return
		}
	}
	if reply := j.msg.Headers().Get(headers.ReplyTo); reply != "" && !ack.Duplicate {
		// Core NATS: the producer may have gone; the outcome stays on bw.out.
		if err := p.nc.PublishMsg(&nats.Msg{Subject: reply, Header: out.Header, Data: out.Data}); err != nil {
			p.log.Warn("publishing to the producer's reply subject failed; the outcome is on bw.out", slog.String("route", route),
				slog.String("message_id", j.id), slog.String("reply_to", reply), slog.String("error", err.Error()))
		}
	}
	if t.cleanHistory {
		if err := p.history.remove(ctx, j.historyKey()); err != nil {
			p.log.Warn("removing attempt history failed; it expires on its own", slog.String("route", route), slog.String("error", err.Error()))
		}
	}
	// A plain ack: if it is lost, the redelivery finds the outcome claimed
	// and only completes it, so waiting for the server's confirmation would
	// cost a round trip per message for nothing.
	if err := j.msg.Ack(); err != nil {
		// The outcome is claimed: a redelivery only completes it.
		p.log.Warn("ack failed; the message will be redelivered and its claimed outcome completed", slog.String("route", route),
			slog.String("message_id", j.id), slog.String("error", err.Error()))
	}
	p.logOutcome(j, route, t)
	p.obs.Outcome(route, t.outcome, t.attempts, time.Since(j.firstSeen))
}

// outcomeMsg builds the bw.out message of t: the result (or cached value,
// or stub), or for dead the dead-letter record.
func (p *Pipeline) outcomeMsg(j *job, route string, t terminal) *nats.Msg {
	h := nats.Header{}
	h.Set(headers.MsgID, j.claimID())
	h.Set(headers.Outcome, t.outcome)
	h.Set(headers.Attempts, strconv.FormatUint(uint64(t.attempts), 10))
	h.Set(headers.OriginalID, j.id)
	h.Set(headers.Route, route)
	if len(t.errs) > 0 {
		last := t.errs[len(t.errs)-1]
		h.Set(headers.ErrorKind, string(last.Kind))
		h.Set(headers.Error, last.Message)
	}
	if t.outcome == headers.OutcomeCached {
		h.Set(headers.CacheAge, strconv.FormatInt(t.cacheAge.Milliseconds(), 10))
	}
	for k, v := range t.stubHeaders {
		h.Set(k, v)
	}
	msg := &nats.Msg{Subject: topology.OutPrefix + j.token, Header: h, Data: t.payload}
	if t.outcome == headers.OutcomeDead {
		rec := &deadletter.Record{
			Route:     route,
			Subject:   j.msg.Subject(),
			MessageID: j.id,
			StreamSeq: j.seq,
			FirstSeen: j.firstSeen,
			DeadAt:    time.Now().UTC(),
			Attempts:  t.attempts,
			Reason:    t.reason,
			Errors:    t.errs,
			Headers:   j.msg.Headers(),
			Payload:   j.msg.Data(),
		}
		msg.Data = rec.Marshal()
	}
	return msg
}

// publish publishes msg to JetStream and waits for its ack. When too many
// publishes are outstanding it waits and tries again: the consumer slows
// down (its slots stay taken) rather than dropping or forgetting a result.
func (p *Pipeline) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	const maxStalls = 600 // with the stall wait below: about a minute of back-pressure before giving up to a redelivery
	for range maxStalls {
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithStallWait(100*time.Millisecond))
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			continue
		}
		if err != nil {
			return nil, err
		}
		select {
		case ack := <-f.Ok():
			return ack, nil
		case err := <-f.Err():
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("publish to %s: %w after %d stalls", msg.Subject, jetstream.ErrTooManyStalledMsgs, maxStalls)
}

func (p *Pipeline) logOutcome(j *job, route string, t terminal) {
	attrs := []slog.Attr{
		slog.String("route", route),
		slog.String("message_id", j.id),
		slog.Uint64("attempt", uint64(j.attempt)),
		slog.Uint64("attempts", uint64(t.attempts)),
		slog.String("outcome", t.outcome),
		slog.Float64("duration_ms", ms(time.Since(j.start))),
		slog.Float64("since_first_seen_ms", ms(time.Since(j.firstSeen))),
	}
	level := slog.LevelInfo
	if len(t.errs) > 0 {
		last := t.errs[len(t.errs)-1]
		attrs = append(attrs, slog.String("error_kind", string(last.Kind)), slog.String("error", last.Message))
	}
	if t.reason != "" {
		attrs = append(attrs, slog.String("reason", t.reason))
	}
	if t.outcome == headers.OutcomeDead {
		level = slog.LevelWarn
	}
	p.log.LogAttrs(context.Background(), level, "outcome", attrs...)
}

// ms is d in milliseconds, for log lines people read.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
