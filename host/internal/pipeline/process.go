package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/internal/render"
	"github.com/breakwater-dev/breakwater/host/internal/subject"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// serverBackstop: the server stops delivering a message this many
// deliveries after the pipeline's hard bound, should even the dead letter
// at the bound fail; the message then stays in BW_IN, undelivered.
const serverBackstop = 10

// hardBound is the most deliveries a message of a route with maxAttempts
// gets before it is dead-lettered with the reason (Options.InternalRetries
// beyond max_attempts).
func (p *Pipeline) hardBound(maxAttempts uint32) uint32 {
	return maxAttempts + uint32(p.o.InternalRetries)
}

// job is one delivery of one message.
type job struct {
	msg jetstream.Msg
	// token names the route in subjects and keys built for the message:
	// bw.in.<token>, or topology.InvalidToken when the subject's remainder
	// cannot name a route (too long, several tokens, odd bytes).
	token     string
	seq       uint64 // sequence in BW_IN: the message's identity
	id        string // the producer's Nats-Msg-Id, else the sequence
	delivery  uint32 // delivery number, 1-based (not the attempt: see process)
	firstSeen time.Time
	start     time.Time
}

func newJob(msg jetstream.Msg) (*job, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("message on %s has no JetStream metadata: %w", msg.Subject(), err)
	}
	token := strings.TrimPrefix(msg.Subject(), topology.InPrefix)
	if !subject.ValidToken(token) {
		token = topology.InvalidToken
	}
	j := &job{
		msg:       msg,
		token:     token,
		seq:       meta.Sequence.Stream,
		delivery:  uint32(meta.NumDelivered),
		firstSeen: meta.Timestamp,
		start:     time.Now(),
	}
	if j.id = msg.Headers().Get(headers.MsgID); j.id == "" {
		j.id = strconv.FormatUint(j.seq, 10)
	}
	return j, nil
}

func (j *job) historyKey() string { return historyKey(j.token, j.seq) }

// claimID is the Nats-Msg-Id of the message's terminal outcome.
func (j *job) claimID() string { return j.token + ":" + strconv.FormatUint(j.seq, 10) }

// process handles one delivery of a route's message through to a retry
// (NakWithDelay) or a terminal outcome (ack).
//
// Attempts are calls to the targets recorded in the message's history, not
// deliveries: a delivery lost to an internal failure (an outcome that could
// not be published, an unavailable bucket, a lost ack, a crash) uses up
// none of max_attempts. Such deliveries are bounded separately, by
// streams.internal_retries.
func (p *Pipeline) process(ctx context.Context, r *attempt.Route, msg jetstream.Msg) {
	p.obs.InFlight(r.Name, 1)
	defer p.obs.InFlight(r.Name, -1)
	j, err := newJob(msg)
	if err != nil {
		p.log.Error("cannot process message; it will be redelivered", slog.String("route", r.Name), slog.String("error", err.Error()))
		_ = msg.NakWithDelay(p.o.InternalRetryDelay)
		return
	}
	defer p.keepAlive(msg)()
	// The producer's trace continues here, through every attempt and
	// decision, to the target and the outcome.
	ctx, span := p.o.Tracer.Start(tracing.Extract(ctx, msg.Headers()), "breakwater.process "+r.Name, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(tracing.AttrRoute.String(r.Name), tracing.AttrMessageID.String(j.id), tracing.AttrDelivery.Int64(int64(j.delivery))))
	defer span.End()

	var rec record
	if j.delivery > 1 {
		if rec, err = p.history.load(ctx, j.historyKey()); err != nil {
			if j.delivery <= p.hardBound(r.MaxAttempts) {
				p.retryLater(j, r.Name, err, nil)
				return
			}
			rec.Errors = []abi.AttemptError{attempt.Error(0, abi.ErrorInternal, 0, err.Error())}
		}
		if len(rec.Errors) < int(j.delivery)-1 {
			p.obs.Redelivered(r.Name)
		}
	}
	if res := rec.Result; res != nil && time.Since(res.SavedAt) < p.o.DuplicateWindow {
		// An earlier delivery reached this outcome and could not publish
		// it: publish it now rather than call the target again. Within the
		// duplicate window a publish that did reach the stream is seen as
		// a duplicate, so the outcome stays one.
		p.log.Info("publishing the outcome an earlier delivery reached", slog.String("route", r.Name), slog.String("message_id", j.id),
			slog.Uint64("delivery", uint64(j.delivery)), slog.String("outcome", res.Outcome))
		p.finish(ctx, j, r.Name, restoreResult(res))
		return
	}
	if j.delivery > p.hardBound(r.MaxAttempts) {
		p.finishBounded(ctx, j, r.Name, p.hardBound(r.MaxAttempts), rec.Errors)
		return
	}
	req := &attempt.Request{
		Msg:       &render.Message{Route: r.Name, Subject: msg.Subject(), MessageID: j.id, Headers: msg.Headers(), Payload: msg.Data()},
		FirstSeen: j.firstSeen,
		Attempt:   attempt.Calls(rec.Errors) + 1,
		History:   rec.Errors,
	}
	res, err := p.core.Attempt(ctx, r, req)
	if err != nil {
		p.retryLater(j, r.Name, err, nil)
		return
	}
	if res.Outcome != "" {
		p.finish(ctx, j, r.Name, res)
		return
	}
	if err := p.history.save(ctx, j.historyKey(), record{Errors: res.Errors}); err != nil {
		p.log.Warn("saving attempt history failed; the dead letter may miss this attempt", slog.String("route", r.Name), slog.String("message_id", j.id), slog.String("error", err.Error()))
	}
	if err := msg.NakWithDelay(res.RetryDelay); err != nil {
		p.log.Warn("scheduling the retry failed; JetStream redelivers the message after the ack wait", slog.String("route", r.Name), slog.String("message_id", j.id),
			slog.Duration("ack_wait", p.o.AckWait), slog.String("error", err.Error()))
	}
	p.obs.Retry(r.Name, res.Attempts, res.RetryDelay)
	attempt.LogRetry(p.log, r.Name, j.id, res)
}

// keepAlive tells JetStream, every third of the ack wait, that the message
// is still being worked on (a slow target, a policy decision), so the ack
// wait can stay short: a delivery lost to a crash or a lost ack comes back
// after it, not after the longest call. It returns the function that stops.
func (p *Pipeline) keepAlive(msg jetstream.Msg) (stop func()) {
	every := p.o.AckWait / 3
	if every <= 0 {
		return func() {}
	}
	var t *time.Timer
	t = time.AfterFunc(every, func() {
		_ = msg.InProgress()
		t.Reset(every)
	})
	return func() { t.Stop() }
}

// processUnrouted dead-letters a message published on a subject no route serves.
func (p *Pipeline) processUnrouted(ctx context.Context, msg jetstream.Msg) {
	j, err := newJob(msg)
	if err != nil {
		_ = msg.NakWithDelay(p.o.InternalRetryDelay)
		return
	}
	if j.delivery > p.hardBound(1) {
		p.finishBounded(ctx, j, "", p.hardBound(1), nil)
		return
	}
	var ae abi.AttemptError
	if j.token == topology.InvalidToken {
		ae = attempt.Error(j.delivery, abi.ErrorUnknownRoute, 0,
			fmt.Sprintf("no route can serve subject %.80q (%d bytes): after bw.in. a subject must be one route name of at most %d letters, digits, '-' or '_'; fix the producer", msg.Subject(), len(msg.Subject()), subject.MaxToken))
	} else {
		ae = attempt.Error(j.delivery, abi.ErrorUnknownRoute, 0,
			fmt.Sprintf("no route serves %s: add a route named %q to the config (or publish to bw.in.<route> of a configured route), then `runtime dlq replay %s`", msg.Subject(), j.token, j.token))
	}
	p.finish(ctx, j, "", &attempt.Result{Outcome: headers.OutcomeDead, Errors: []abi.AttemptError{ae}, Reason: "unknown route"})
}

// finishBounded dead-letters a message delivered more than bound times,
// naming the last failure: whatever kept failing (an outcome that could
// not be published, a store that was unavailable) must not loop forever.
func (p *Pipeline) finishBounded(ctx context.Context, j *job, route string, bound uint32, hist []abi.AttemptError) {
	last := "unknown (no failure was recorded)"
	if len(hist) > 0 {
		l := hist[len(hist)-1]
		last = fmt.Sprintf("%s: %s", l.Kind, l.Message)
	}
	ae := attempt.Error(attempt.Calls(hist), abi.ErrorInternal, 0,
		fmt.Sprintf("delivered %d times, more than the hard bound of %d deliveries (max_attempts + streams.internal_retries); the last failure: %s", j.delivery, bound, last))
	p.finish(ctx, j, route, &attempt.Result{Outcome: headers.OutcomeDead, Errors: append(hist, ae), Attempts: attempt.Calls(hist),
		Reason: "delivery bound reached: " + last})
}

// retryLater puts a message back after an internal failure (KV unavailable,
// an outcome that could not be published): nothing is lost, and the failure
// uses up none of the message's attempts. The failure is added to the
// message's history, with result when the delivery had reached an outcome,
// so that the next delivery publishes that outcome instead of calling the
// target again, and a dead letter at the delivery bound names the failure.
// Both are best effort: the store may be what failed.
func (p *Pipeline) retryLater(j *job, route string, err error, result *attempt.Result) {
	ctx := context.Background()
	rec, herr := p.history.load(ctx, j.historyKey())
	if herr == nil {
		rec.Errors = append(rec.Errors, attempt.Error(attempt.Calls(rec.Errors), abi.ErrorInternal, 0, err.Error()))
		if result != nil {
			rec.Result = saveResult(result)
		}
		herr = p.history.save(ctx, j.historyKey(), rec)
	}
	attrs := []slog.Attr{slog.String("route", route), slog.String("message_id", j.id), slog.Uint64("delivery", uint64(j.delivery)), slog.String("error", err.Error())}
	if result != nil {
		attrs = append(attrs, slog.String("outcome_kept", result.Outcome))
	}
	if herr != nil {
		attrs = append(attrs, slog.String("history_error", herr.Error()))
	}
	if nerr := j.msg.NakWithDelay(p.o.InternalRetryDelay); nerr != nil {
		attrs = append(attrs, slog.String("nak_error", nerr.Error()))
		p.log.LogAttrs(ctx, slog.LevelWarn, "internal failure; the nak failed too: JetStream redelivers the message after the ack wait", append(attrs, slog.Duration("ack_wait", p.o.AckWait))...)
		return
	}
	p.log.LogAttrs(ctx, slog.LevelWarn, "internal failure; the message is redelivered (after the ack wait instead, if this nak is lost)",
		append(attrs, slog.Duration("in", p.o.InternalRetryDelay), slog.Duration("ack_wait", p.o.AckWait))...)
}
