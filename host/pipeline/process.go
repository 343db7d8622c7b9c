package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/cache"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/subject"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
	"github.com/breakwater-dev/breakwater/host/render"
	"github.com/breakwater-dev/breakwater/host/target"
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

// maxErrorMessage bounds an attempt's error message (it travels in
// headers, histories and dead letters).
const maxErrorMessage = 1024

// attemptError records one failed attempt, its message bounded.
func attemptError(attempt uint32, kind abi.ErrorKind, status int, msg string) abi.AttemptError {
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage] + "…"
	}
	return abi.AttemptError{Attempt: attempt, AtUnixMs: time.Now().UnixMilli(), Kind: kind, Status: int32(status), Message: msg}
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

func (j *job) input(r *Route) *abi.Input {
	return &abi.Input{
		Route:       r.Name,
		Subject:     j.msg.Subject(),
		MessageID:   j.id,
		Attempt:     j.delivery,
		MaxAttempts: r.MaxAttempts,
		ElapsedMs:   time.Since(j.firstSeen).Milliseconds(),
		Payload:     j.msg.Data(),
	}
}

// responseInput shows policies what the target said with its failure: the
// allowed response headers and Retry-After.
func responseInput(in *abi.Input, r *Route, te *target.Error) {
	in.ResponseHeaders = r.ResponseHeaders.Select(te.Headers)
	in.RetryAfterMs = te.RetryAfter.Milliseconds()
}

// completeInput fills in what only policies read (headers, flags), once,
// just before the first policy is asked: a message that succeeds on its
// first call never pays for it.
func (p *Pipeline) completeInput(in *abi.Input, h map[string][]string) {
	if in.Headers == nil {
		in.Headers = flatten(h)
	}
	if in.Flags == nil && p.o.Switches != nil {
		in.Flags = p.o.Switches.ForRoute(in.Route)
	}
}

func flatten(h map[string][]string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

// process handles one delivery of a route's message through to a retry
// (NakWithDelay) or a terminal outcome (ack).
//
// Attempts are calls to the target recorded in the message's history, not
// deliveries: a delivery lost to an internal failure (an outcome that could
// not be published, an unavailable bucket, a lost ack, a crash) uses up
// none of max_attempts. Such deliveries are bounded separately, by
// streams.internal_retries.
func (p *Pipeline) process(ctx context.Context, r *Route, msg jetstream.Msg) {
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
	in := j.input(r)
	m := &render.Message{Route: r.Name, Subject: msg.Subject(), MessageID: j.id, Headers: msg.Headers(), Payload: msg.Data()}

	var rec record
	if j.delivery > 1 {
		if rec, err = p.history.load(ctx, j.historyKey()); err != nil {
			if j.delivery <= p.hardBound(r.MaxAttempts) {
				p.retryLater(j, r.Name, err, nil)
				return
			}
			rec.Errors = []abi.AttemptError{attemptError(0, abi.ErrorInternal, 0, err.Error())}
		}
		if len(rec.Errors) < int(j.delivery)-1 {
			p.obs.Redelivered(r.Name)
		}
	}
	hist := rec.Errors
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
		p.finishBounded(ctx, j, r.Name, p.hardBound(r.MaxAttempts), hist)
		return
	}
	attempt := targetCalls(hist) + 1
	in.Attempt = attempt

	var key string
	if r.CacheKey != nil {
		if key, err = r.CacheKey.Execute(m); err != nil {
			ae := attemptError(attempt, abi.ErrorBadInput, 0, err.Error())
			p.finish(ctx, j, r.Name, terminal{outcome: headers.OutcomeDead, errs: append(hist, ae), attempts: 0, cleanHistory: j.delivery > 1,
				reason: "bad input: the message cannot be processed as published; fix the producer, then replay"})
			return
		}
	}

	var reason, decided string
	if attempt > r.MaxAttempts {
		// Every attempt was made and failed, but no outcome was recorded
		// (the fallback's failed): do not call the target again.
		reason = "attempts exhausted"
		if len(hist) > 0 {
			in.Error = hist[len(hist)-1]
		}
	} else {
		callCtx, cancel := context.WithTimeout(ctx, r.Timeout)
		resp, te := p.callTarget(callCtx, r, m, in)
		cancel()
		if te == nil {
			if key != "" {
				if err := p.cache.Put(ctx, r.Name, key, resp.Body); err != nil {
					p.log.Warn("storing last-known-good value failed", slog.String("route", r.Name), slog.String("message_id", j.id), slog.String("error", err.Error()))
				}
			}
			p.finish(ctx, j, r.Name, terminal{outcome: headers.OutcomeOK, payload: resp.Body, attempts: attempt, cleanHistory: j.delivery > 1,
				respHeaders: r.ResponseHeaders.Select(resp.Headers)})
			return
		}
		ae := attemptError(attempt, te.Kind, te.Status, te.Message)
		hist = append(hist, ae)
		in.Error = ae
		responseInput(in, r, te)
		switch te.Kind {
		case abi.ErrorBadInput:
			p.finish(ctx, j, r.Name, terminal{outcome: headers.OutcomeDead, errs: hist, attempts: attempt, cleanHistory: true,
				reason: "bad input: the message cannot be processed as published; fix the producer, then replay"})
			return
		case abi.ErrorResultTooLarge:
			// Asking again would not make the answer smaller.
			p.fallback(ctx, j, r, in, key, hist, attempt, "the target's answer is too large for an outcome; not retried", "")
			return
		}
		p.completeInput(in, msg.Headers())
		d, by := p.decideRetry(ctx, r, in)
		decided = "retry=" + by
		if d.Retry {
			if err := p.history.save(ctx, j.historyKey(), record{Errors: hist}); err != nil {
				p.log.Warn("saving attempt history failed; the dead letter may miss this attempt", slog.String("route", r.Name), slog.String("message_id", j.id), slog.String("error", err.Error()))
			}
			delay := time.Duration(d.DelayMs) * time.Millisecond
			if err := msg.NakWithDelay(delay); err != nil {
				p.log.Warn("scheduling the retry failed; JetStream redelivers the message after the ack wait", slog.String("route", r.Name), slog.String("message_id", j.id),
					slog.Duration("ack_wait", p.o.AckWait), slog.String("error", err.Error()))
			}
			p.obs.Retry(r.Name, attempt, delay)
			p.log.Info("retry scheduled", slog.String("route", r.Name), slog.String("message_id", j.id), slog.Uint64("attempt", uint64(attempt)),
				slog.String("outcome", "retry"), slog.Float64("delay_ms", ms(delay)), slog.String("error_kind", string(te.Kind)), slog.String("error", te.Message), slog.String("reason", d.Reason),
				slog.String("decided_by", by))
			return
		}
		reason = d.Reason
	}
	p.fallback(ctx, j, r, in, key, hist, min(attempt, r.MaxAttempts), reason, decided)
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

// fallback serves a message that will not be retried: cached value, stub,
// or dead letter, as the fallback policy chooses.
func (p *Pipeline) fallback(ctx context.Context, j *job, r *Route, in *abi.Input, key string, hist []abi.AttemptError, attempts uint32, reason, decided string) {
	t := terminal{errs: hist, attempts: attempts, reason: reason, cleanHistory: true, decidedBy: decided}
	p.completeInput(in, j.msg.Headers())
	if err := p.serveFallback(ctx, r, in, key, &t); err != nil {
		p.retryLater(j, r.Name, err, nil)
		return
	}
	if t.outcome == "" {
		t.outcome = headers.OutcomeDead
	}
	p.finish(ctx, j, r.Name, t)
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
		ae = attemptError(j.delivery, abi.ErrorUnknownRoute, 0,
			fmt.Sprintf("no route can serve subject %.80q (%d bytes): after bw.in. a subject must be one route name of at most %d letters, digits, '-' or '_'; fix the producer", msg.Subject(), len(msg.Subject()), subject.MaxToken))
	} else {
		ae = attemptError(j.delivery, abi.ErrorUnknownRoute, 0,
			fmt.Sprintf("no route serves %s: add a route named %q to the config (or publish to bw.in.<route> of a configured route), then `runtime dlq replay %s`", msg.Subject(), j.token, j.token))
	}
	p.finish(ctx, j, "", terminal{outcome: headers.OutcomeDead, errs: []abi.AttemptError{ae}, reason: "unknown route"})
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
	ae := attemptError(targetCalls(hist), abi.ErrorInternal, 0,
		fmt.Sprintf("delivered %d times, more than the hard bound of %d deliveries (max_attempts + streams.internal_retries); the last failure: %s", j.delivery, bound, last))
	p.finish(ctx, j, route, terminal{outcome: headers.OutcomeDead, errs: append(hist, ae), attempts: targetCalls(hist), cleanHistory: true,
		reason: "delivery bound reached: " + last})
}

// retryLater puts a message back after an internal failure (KV unavailable,
// an outcome that could not be published): nothing is lost, and the failure
// uses up none of the message's attempts. The failure is added to the
// message's history, with result when the delivery had reached an outcome,
// so that the next delivery publishes that outcome instead of calling the
// target again, and a dead letter at the delivery bound names the failure.
// Both are best effort: the store may be what failed.
func (p *Pipeline) retryLater(j *job, route string, err error, result *terminal) {
	ctx := context.Background()
	rec, herr := p.history.load(ctx, j.historyKey())
	if herr == nil {
		rec.Errors = append(rec.Errors, attemptError(targetCalls(rec.Errors), abi.ErrorInternal, 0, err.Error()))
		if result != nil {
			rec.Result = saveResult(*result)
		}
		herr = p.history.save(ctx, j.historyKey(), rec)
	}
	attrs := []slog.Attr{slog.String("route", route), slog.String("message_id", j.id), slog.Uint64("delivery", uint64(j.delivery)), slog.String("error", err.Error())}
	if result != nil {
		attrs = append(attrs, slog.String("outcome_kept", result.outcome))
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

// callTarget makes one call to r's target under its kill switch and guards,
// and fills in the breaker state and flags policies will see.
func (p *Pipeline) callTarget(ctx context.Context, r *Route, m *render.Message, in *abi.Input) (*target.Response, *target.Error) {
	if p.o.Switches != nil {
		if !p.o.Switches.Enabled(r.Name, r.Target) {
			p.obs.Attempt(r.Name, r.Target, abi.ErrorSwitchedOff, 0)
			return nil, &target.Error{Kind: abi.ErrorSwitchedOff,
				Message: fmt.Sprintf("route %q or its target %q is switched off (flag %s.enabled or target.%s.enabled); the call was not made", r.Name, r.Target, r.Name, r.Target)}
		}
	}
	ctx, span := p.o.Tracer.Start(ctx, "breakwater.attempt "+r.Target, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(tracing.AttrRoute.String(r.Name), tracing.AttrTarget.String(r.Target), tracing.AttrAttempt.Int64(int64(in.Attempt))))
	defer span.End()
	t0 := time.Now()
	var resp *target.Response
	var err error
	if r.Guard != nil {
		resp, err = r.Guard.Call(ctx, r.Caller, &target.Request{Message: m})
		in.BreakerState = r.Guard.BreakerState()
	} else {
		resp, err = r.Caller.Call(ctx, &target.Request{Message: m})
	}
	if err != nil {
		te := target.Classify(err)
		p.obs.Attempt(r.Name, r.Target, te.Kind, time.Since(t0))
		span.SetAttributes(tracing.AttrErrorKind.String(string(te.Kind)))
		if te.Status != 0 {
			span.SetAttributes(tracing.AttrStatus.Int(te.Status))
		}
		span.SetStatus(codes.Error, te.Message)
		return nil, te
	}
	p.obs.Attempt(r.Name, r.Target, "", time.Since(t0))
	return resp, nil
}

// serveFallback asks the fallback policy and fills t with the cached value
// or a stub; t.outcome stays "" when neither is available. The error is a
// failed cache lookup (t is then untouched).
func (p *Pipeline) serveFallback(ctx context.Context, r *Route, in *abi.Input, key string, t *terminal) error {
	var cached cache.Entry
	if key != "" {
		var ok bool
		var err error
		if cached, ok, err = p.cache.Get(ctx, r.Name, key, r.CacheTTL); err != nil {
			return err
		}
		in.CacheAvailable, in.CacheAgeMs = ok, cached.Age.Milliseconds()
	}
	fd, by := p.chooseFallback(ctx, r, in)
	t.decidedBy = strings.TrimPrefix(t.decidedBy+" fallback="+by, " ")
	if fd.Reason != "" {
		t.reason = strings.TrimPrefix(t.reason+"; "+fd.Reason, "; ")
	}
	switch fd.Action {
	case abi.FallbackCache:
		if in.CacheAvailable {
			t.outcome, t.payload, t.cacheAge = headers.OutcomeCached, cached.Value, cached.Age
			return nil
		}
		fallthrough
	case abi.FallbackStub:
		if s, ok := p.generateStub(ctx, r, in); ok {
			t.outcome, t.payload, t.stubHeaders = headers.OutcomeStub, s.Payload, s.Headers
		}
	}
	return nil
}
