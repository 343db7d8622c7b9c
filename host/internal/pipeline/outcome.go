package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/internal/subject"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// finish publishes t exactly once and acks the message.
//
// The outcome on bw.out carries the Nats-Msg-Id "<route>:<stream seq>", so
// when a crash falls between publishing and acking, the redelivered message
// finds its outcome already claimed (a duplicate publish) and only completes
// what the first delivery started: the dead letter, when the claimed outcome
// was dead, then the ack. One message, one terminal outcome.
func (p *Pipeline) finish(ctx context.Context, j *job, route string, t *attempt.Result) {
	if route == "" {
		route = j.token
	}
	// On a failure below, the outcome reached is kept for the next
	// delivery (retryLater), which publishes it rather than call again.
	out, err := p.outcomeMsg(ctx, j, route, t)
	if err != nil {
		p.retryLater(j, route, err, t)
		return
	}
	ack, err := p.publish(ctx, out)
	if err != nil {
		p.retryLater(j, route, fmt.Errorf("publishing outcome: %w", err), t)
		return
	}
	if ack.Duplicate {
		gctx, cancel := context.WithTimeout(ctx, p.o.BrokerTimeout)
		claimed, err := p.outs.GetMsg(gctx, ack.Sequence)
		cancel()
		if err != nil {
			p.retryLater(j, route, fmt.Errorf("reading claimed outcome %d: %w", ack.Sequence, err), t)
			return
		}
		p.log.Info("outcome already published by an earlier delivery; completing it", slog.String("route", route),
			slog.String("message_id", j.id), slog.String("outcome", claimed.Header.Get(headers.Outcome)))
		out = &nats.Msg{Subject: claimed.Subject, Header: claimed.Header, Data: claimed.Data}
		t.Outcome = claimed.Header.Get(headers.Outcome)
	}
	if t.Outcome == headers.OutcomeDead {
		dl := &nats.Msg{Subject: topology.DLQ(route), Header: out.Header, Data: out.Data}
		if _, err := p.publish(ctx, dl); err != nil {
			p.retryLater(j, route, fmt.Errorf("publishing dead letter: %w", err), t)
			return
		}
	}
	if reply := j.msg.Headers().Get(headers.ReplyTo); reply != "" && !ack.Duplicate {
		p.replyTo(j, route, reply, out)
	}
	if j.delivery > 1 { // a first delivery has no history
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
	trace.SpanFromContext(ctx).SetAttributes(tracing.AttrOutcome.String(t.Outcome), tracing.AttrAttempt.Int64(int64(t.Attempts)))
	attempt.LogOutcome(p.log, route, j.id, t, time.Since(j.start), slog.Uint64("delivery", uint64(j.delivery)),
		slog.Float64("since_first_seen_ms", attempt.Millis(time.Since(j.firstSeen))))
	if !ack.Duplicate {
		// A re-completion is not a second outcome.
		p.obs.Outcome(p.metricRoute(route), t.Outcome, t.Attempts, time.Since(j.firstSeen))
	}
}

// unroutedLabel is the route label of metrics about messages no route
// serves: their subjects are the producers' choice, and one series per
// junk subject would grow without bound.
const unroutedLabel = "_unrouted"

func (p *Pipeline) metricRoute(route string) string {
	if p.route(route) == nil {
		return unroutedLabel
	}
	return route
}

// replyTo also publishes the outcome to the producer's reply subject, on
// the replies connection, if the subject is valid and in the route's reply
// namespaces; otherwise the reply is refused, logged and counted (the
// outcome is on bw.out either way).
func (p *Pipeline) replyTo(j *job, route, reply string, out *nats.Msg) {
	allowed := topology.ReplyNamespaces
	if r := p.route(route); r != nil {
		allowed = r.ReplySubjects
	}
	if err := subject.CheckReply(reply, allowed); err != nil {
		p.obs.ReplyRefused(p.metricRoute(route))
		p.log.Warn("reply refused; the outcome is on bw.out", slog.String("route", route), slog.String("message_id", j.id), slog.String("error", err.Error()))
		return
	}
	// Core NATS: the producer may have gone; the outcome stays on bw.out.
	if err := p.replies.PublishMsg(&nats.Msg{Subject: reply, Header: out.Header, Data: out.Data}); err != nil {
		p.log.Warn("publishing to the producer's reply subject failed; the outcome is on bw.out", slog.String("route", route),
			slog.String("message_id", j.id), slog.String("reply_to", reply), slog.String("error", err.Error()))
	}
}

// outcomeMsg builds the bw.out message of t: the result (or cached value,
// or stub), or for dead the dead-letter record. It never exceeds the
// server's max_payload: a dead-letter record too large to hold the
// original message refers to a copy in BW_DLQ_DATA instead, and any other
// outcome too large becomes a dead letter of kind result_too_large.
func (p *Pipeline) outcomeMsg(ctx context.Context, j *job, route string, t *attempt.Result) (*nats.Msg, error) {
	limit := p.maxPayload()
	msg := p.buildOutcome(ctx, j, route, t, nil)
	if msgSize(msg) <= limit {
		return msg, nil
	}
	if t.Outcome != headers.OutcomeDead {
		t.Errors = append(t.Errors, attempt.Error(t.Attempts, abi.ErrorResultTooLarge, 0,
			fmt.Sprintf("the %s outcome is %d bytes, more than the server's max_payload (%d)", t.Outcome, msgSize(msg), limit)))
		t.Outcome, t.Payload, t.StubHeaders = headers.OutcomeDead, nil, nil
		t.Reason = strings.TrimPrefix(t.Reason+"; outcome too large", "; ")
		if msg = p.buildOutcome(ctx, j, route, t, nil); msgSize(msg) <= limit {
			return msg, nil
		}
	}
	ref, err := p.keepOriginal(ctx, j)
	if err != nil {
		return nil, err
	}
	// With the original by reference, what is left is the runtime's own
	// text: cut it until it fits (policies' reasons, error messages).
	for _, keep := range []int{64, 8, 1} {
		if len(t.Errors) > keep {
			t.Errors = append(t.Errors[:0:0], t.Errors[len(t.Errors)-keep:]...)
		}
		if len(t.Reason) > attempt.MaxErrorMessage {
			t.Reason = t.Reason[:attempt.MaxErrorMessage] + "…"
		}
		if msg = p.buildOutcome(ctx, j, route, t, ref); msgSize(msg) <= limit {
			return msg, nil
		}
	}
	return nil, fmt.Errorf("dead-letter record of %d bytes does not fit in max_payload %d even without the original", msgSize(msg), limit)
}

// maxPayload is the server's max_payload, read anew: a reconnect may land
// on a server with another limit.
func (p *Pipeline) maxPayload() int { return int(p.nc.MaxPayload()) }

// keepOriginal copies the original message to BW_DLQ_DATA (once: the copy
// is de-duplicated by the message's claim id) and returns its reference.
func (p *Pipeline) keepOriginal(ctx context.Context, j *job) (*deadletter.Ref, error) {
	h := nats.Header{}
	for k, v := range j.msg.Headers() {
		// The producer's Nats- headers (Nats-Expected-Stream, say) would
		// make this publish fail, and the message with it.
		if !headers.NATS(k) {
			h[k] = v
		}
	}
	h.Set(headers.MsgID, "original:"+j.claimID())
	ack, err := p.publish(ctx, &nats.Msg{Subject: topology.DLQData(j.token), Header: h, Data: j.msg.Data()})
	if err != nil {
		return nil, fmt.Errorf("keeping the original of an oversized dead letter in %s: %w", topology.StreamDLQData, err)
	}
	return &deadletter.Ref{Stream: topology.StreamDLQData, Seq: ack.Sequence, Size: len(j.msg.Data())}, nil
}

// msgSize is what msg counts against max_payload: headers and data.
func msgSize(m *nats.Msg) int { return attempt.MsgSize(m.Header, m.Data) }

// buildOutcome builds the outcome message; with original set, a dead
// letter's record refers to it instead of holding headers and payload.
func (p *Pipeline) buildOutcome(ctx context.Context, j *job, route string, t *attempt.Result, original *deadletter.Ref) *nats.Msg {
	hm, dropped := t.Header(route, j.id)
	h := nats.Header(hm)
	if dropped > 0 {
		p.log.Warn("stub headers in the Nats- or Bw- namespace, or not valid header names, dropped", slog.String("route", route), slog.String("message_id", j.id), slog.Int("dropped", dropped))
	}
	// Whoever reads the outcome continues the trace (over any header a
	// target or a stub set).
	tracing.Inject(ctx, h)
	h.Set(headers.MsgID, j.claimID())
	msg := &nats.Msg{Subject: topology.OutPrefix + j.token, Header: h, Data: t.Payload}
	if t.Outcome == headers.OutcomeDead {
		rec := &deadletter.Record{
			Route:     route,
			Subject:   j.msg.Subject(),
			MessageID: j.id,
			StreamSeq: j.seq,
			FirstSeen: j.firstSeen,
			DeadAt:    time.Now().UTC(),
			Attempts:  t.Attempts,
			Reason:    t.Reason,
			Errors:    t.Errors,
			Headers:   j.msg.Headers(),
			Payload:   j.msg.Data(),
			Original:  original,
		}
		if original != nil {
			rec.Headers, rec.Payload = nil, nil
		}
		msg.Data = rec.Marshal()
	}
	return msg
}

// publish publishes msg to JetStream and waits for its ack, at most
// BrokerTimeout: after a failover a PubAck can be lost, and a worker must
// not wait for it forever (the message goes back to JetStream instead, and
// its slot is freed). When too many publishes are outstanding it waits and
// tries again: the consumer slows down (its slots stay taken) rather than
// dropping or forgetting a result. The outcome is recorded for readiness.
func (p *Pipeline) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	ack, err := p.publishOnce(ctx, msg)
	if err != nil {
		e := fmt.Sprintf("%s: %v", msg.Subject, err)
		p.publishErr.Store(&e)
		return nil, err
	}
	p.publishErr.Store(nil)
	return ack, nil
}

func (p *Pipeline) publishOnce(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	const maxStalls = 600 // with the stall wait below: about a minute of back-pressure before giving up to a redelivery
	for range maxStalls {
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithStallWait(100*time.Millisecond))
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			continue
		}
		if err != nil {
			return nil, err
		}
		timer := time.NewTimer(p.o.BrokerTimeout)
		defer timer.Stop()
		select {
		case ack := <-f.Ok():
			return ack, nil
		case err := <-f.Err():
			return nil, err
		case <-timer.C:
			return nil, fmt.Errorf("no ack within %v (streams.broker_timeout)", p.o.BrokerTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("%w after %d stalls", jetstream.ErrTooManyStalledMsgs, maxStalls)
}
