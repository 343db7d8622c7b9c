package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/subject"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
	"github.com/breakwater-dev/breakwater/host/render"
	"github.com/breakwater-dev/breakwater/host/target"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// CallQueue is the queue group of bw.call subscriptions: instances share
// the sync load.
const CallQueue = "breakwater"

// fallbackReserve is the share of a sync deadline kept for the fallback
// (cache lookup, stub) once the target has failed, capped at maxReserve.
const (
	fallbackReserveDiv = 10
	maxReserve         = 50 * time.Millisecond
)

// subscribeCalls answers r's bw.call.<route> requests until the
// subscription ends. Requests beyond the route's concurrency are answered
// from the fallback alone (no target call); beyond twice that, with an
// immediate busy error.
func (p *Pipeline) subscribeCalls(work context.Context, workers waitGroups, r *Route) (*nats.Subscription, error) {
	{
		slots := make(chan struct{}, r.Concurrency)
		overflow := make(chan struct{}, r.Concurrency)
		sub, err := p.nc.QueueSubscribe(topology.Call(r.Name), CallQueue, func(msg *nats.Msg) {
			if msg.Reply == "" {
				p.log.Warn("sync call without a reply subject ignored; use request-reply (or publish to bw.in for async work)", slog.String("route", r.Name))
				return
			}
			// The reply subject is the requester's choice: the same rules
			// as Bw-Reply-To (and the replies connection may publish
			// nowhere else).
			if err := subject.CheckReply(msg.Reply, r.ReplySubjects); err != nil {
				p.obs.ReplyRefused(r.Name)
				p.log.Warn("sync call refused: its reply subject is not allowed", slog.String("route", r.Name), slog.String("error", err.Error()))
				return
			}
			// The target gets a request while the route has a free slot;
			// beyond that, the fallback alone answers; beyond twice that,
			// an immediate busy error.
			select {
			case slots <- struct{}{}:
				workers.add()
				go func() {
					defer workers.done()
					defer func() { <-slots }()
					p.handleCall(work, r, msg, false)
				}()
				return
			default:
			}
			select {
			case overflow <- struct{}{}:
				workers.add()
				go func() {
					defer workers.done()
					defer func() { <-overflow }()
					p.handleCall(work, r, msg, true)
				}()
			default:
				p.replyError(work, r, msg, "", 0, &target.Error{Kind: abi.ErrorBulkheadFull,
					Message: fmt.Sprintf("route %q is at its concurrency limit (%d) and its fallback queue is full", r.Name, r.Concurrency)}, time.Now())
			}
		})
		if err != nil {
			return nil, fmt.Errorf("subscribing to %s: %w", topology.Call(r.Name), err)
		}
		// Requests wait in the client while all slots are taken; bound them.
		_ = sub.SetPendingLimits(4*r.Concurrency, 64<<20)
		return sub, nil
	}
}

// callDeadline is the shorter of the route's deadline and the caller's;
// a Bw-Deadline-Ms that is not a positive whole number is an error.
func callDeadline(r *Route, msg *nats.Msg, now time.Time) (time.Time, error) {
	d := r.Deadline
	if v := msg.Header.Get(headers.Deadline); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			return time.Time{}, fmt.Errorf("header %s is %.40q: it must be a positive whole number of milliseconds", headers.Deadline, v)
		}
		if ms < d.Milliseconds() {
			d = time.Duration(ms) * time.Millisecond
		}
	}
	return now.Add(d), nil
}

// handleCall answers one sync request within its deadline: the target's
// answer, else a cached value, else a stub, else an error reply. Retries
// are bounded by the remaining time. overloaded skips the target.
func (p *Pipeline) handleCall(work context.Context, r *Route, msg *nats.Msg, overloaded bool) {
	p.obs.InFlight(r.Name, 1)
	defer p.obs.InFlight(r.Name, -1)
	start := time.Now()
	id := msg.Header.Get(headers.MsgID)
	if id == "" {
		id = nuid.Next()
	}
	work, span := p.o.Tracer.Start(tracing.Extract(work, msg.Header), "breakwater.call "+r.Name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(tracing.AttrRoute.String(r.Name), tracing.AttrMessageID.String(id)))
	defer span.End()
	deadline, err := callDeadline(r, msg, start)
	if err != nil {
		p.replyError(work, r, msg, id, 0, &target.Error{Kind: abi.ErrorBadInput, Message: err.Error()}, start)
		return
	}
	ctx, cancel := context.WithDeadline(work, deadline)
	defer cancel()
	reserve := min(time.Until(deadline)/fallbackReserveDiv, maxReserve)

	m := &render.Message{Route: r.Name, Subject: msg.Subject, MessageID: id, Headers: msg.Header, Payload: msg.Data}
	in := &abi.Input{Route: r.Name, Subject: msg.Subject, MessageID: id, MaxAttempts: r.MaxAttempts, Payload: msg.Data}

	var key string
	if r.CacheKey != nil {
		var err error
		if key, err = r.CacheKey.Execute(m); err != nil {
			p.replyError(work, r, msg, id, 0, &target.Error{Kind: abi.ErrorBadInput, Message: err.Error()}, start)
			return
		}
	}
	var hist []abi.AttemptError
	var last *target.Error
	reason := ""
	if overloaded {
		last = &target.Error{Kind: abi.ErrorBulkheadFull, Message: fmt.Sprintf("route %q is at its concurrency limit (%d): answered from the fallback", r.Name, r.Concurrency)}
		in.Error = attemptError(0, last.Kind, 0, last.Message)
		hist = append(hist, in.Error)
	}
	attempt := uint32(0)
	for !overloaded {
		attempt++
		budget := min(r.Timeout, time.Until(deadline)-reserve)
		if budget <= 0 {
			if last == nil {
				last = &target.Error{Kind: abi.ErrorTimeout, Message: "the deadline left no time to call the target"}
			}
			break
		}
		callCtx, cancelCall := context.WithTimeout(ctx, budget)
		in.Attempt = attempt
		resp, te := p.callTarget(callCtx, r, m, in)
		cancelCall()
		if te == nil {
			if key != "" {
				if err := p.cache.Put(ctx, r.Name, key, resp.Body); err != nil {
					p.log.Warn("storing last-known-good value failed", slog.String("route", r.Name), slog.String("message_id", id), slog.String("error", err.Error()))
				}
			}
			p.reply(work, r, msg, id, terminal{outcome: headers.OutcomeOK, payload: resp.Body, attempts: attempt, respHeaders: r.ResponseHeaders.Select(resp.Headers)}, start)
			return
		}
		last = te
		ae := attemptError(attempt, te.Kind, te.Status, te.Message)
		hist = append(hist, ae)
		in.Error = ae
		responseInput(in, r, te)
		in.ElapsedMs = time.Since(start).Milliseconds()
		in.DeadlineMs = time.Until(deadline).Milliseconds()
		if te.Kind == abi.ErrorBadInput || te.Kind == abi.ErrorResultTooLarge {
			break
		}
		p.completeInput(in, msg.Header)
		d, _ := p.decideRetry(ctx, r, in)
		if !d.Retry {
			reason = d.Reason
			break
		}
		delay := time.Duration(d.DelayMs) * time.Millisecond
		if time.Until(deadline)-reserve-delay <= 0 {
			reason = fmt.Sprintf("no time left before the deadline for a retry after %v", delay)
			break
		}
		p.obs.Retry(r.Name, attempt, delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}

	// Fallback: cached, stub, or an error reply.
	t := terminal{errs: hist, attempts: attempt, reason: reason}
	p.completeInput(in, msg.Header)
	if err := p.serveFallback(ctx, r, in, key, &t); err != nil {
		// Without the cache, a stub may still answer.
		p.log.Warn("cache lookup failed during fallback", slog.String("route", r.Name), slog.String("message_id", id), slog.String("error", err.Error()))
		if err := p.serveFallback(ctx, r, in, "", &t); err != nil {
			p.log.Warn("fallback failed", slog.String("route", r.Name), slog.String("error", err.Error()))
		}
	}
	if t.outcome == "" {
		p.replyError(work, r, msg, id, attempt, last, start)
		return
	}
	p.reply(work, r, msg, id, t, start)
}

// reply answers a sync request with t and logs the outcome.
func (p *Pipeline) reply(ctx context.Context, r *Route, msg *nats.Msg, id string, t terminal, start time.Time) {
	h := nats.Header{}
	h.Set(headers.Outcome, t.outcome)
	h.Set(headers.Attempts, strconv.FormatUint(uint64(t.attempts), 10))
	h.Set(headers.OriginalID, id)
	h.Set(headers.Route, r.Name)
	if len(t.errs) > 0 {
		last := t.errs[len(t.errs)-1]
		h.Set(headers.ErrorKind, string(last.Kind))
		h.Set(headers.Error, last.Message)
	}
	if t.outcome == headers.OutcomeCached {
		h.Set(headers.CacheAge, strconv.FormatInt(t.cacheAge.Milliseconds(), 10))
	}
	for _, hs := range []map[string]string{t.respHeaders, t.stubHeaders} {
		for k, v := range hs {
			if headers.Settable(k) {
				h.Set(k, v)
			}
		}
	}
	if t.status != 0 {
		h.Set(headers.Status, strconv.Itoa(t.status))
	}
	tracing.Inject(ctx, h)
	trace.SpanFromContext(ctx).SetAttributes(tracing.AttrOutcome.String(t.outcome), tracing.AttrAttempt.Int64(int64(t.attempts)))
	out := &nats.Msg{Subject: msg.Reply, Header: h, Data: t.payload}
	if size, limit := msgSize(out), int(p.replies.MaxPayload()); size > limit && t.outcome != headers.OutcomeError {
		p.replyError(ctx, r, msg, id, t.attempts, target.TooLarge(fmt.Sprintf("the %s answer (%d bytes)", t.outcome, size), limit), start)
		return
	}
	if err := p.replies.PublishMsg(out); err != nil {
		// The requester gets no answer: not an outcome.
		p.log.Warn("sync reply failed; the requester gets no answer", slog.String("route", r.Name), slog.String("message_id", id),
			slog.String("outcome", t.outcome), slog.String("error", err.Error()))
		return
	}
	level := slog.LevelInfo
	attrs := []slog.Attr{slog.String("route", r.Name), slog.String("path", "sync"), slog.String("message_id", id),
		slog.Uint64("attempts", uint64(t.attempts)), slog.String("outcome", t.outcome), slog.Float64("duration_ms", ms(time.Since(start)))}
	if len(t.errs) > 0 {
		last := t.errs[len(t.errs)-1]
		attrs = append(attrs, slog.String("error_kind", string(last.Kind)), slog.String("error", last.Message))
	}
	if t.outcome == headers.OutcomeError {
		level = slog.LevelWarn
	}
	p.log.LogAttrs(context.Background(), level, "outcome", attrs...)
	p.obs.Outcome(r.Name, t.outcome, t.attempts, time.Since(start))
}

// errorBody is the JSON body of an error reply.
type errorBody struct {
	Error    string        `json:"error"`
	Kind     abi.ErrorKind `json:"kind"`
	Status   int           `json:"status"`
	Attempts uint32        `json:"attempts"`
	Route    string        `json:"route"`
}

// replyError answers a sync request with an error reply: outcome error, a
// status (HTTP-like) in Bw-Status, and a clear message.
func (p *Pipeline) replyError(ctx context.Context, r *Route, msg *nats.Msg, id string, attempts uint32, te *target.Error, start time.Time) {
	if te == nil {
		te = &target.Error{Kind: abi.ErrorInternal, Message: "no answer, no cached value and no stub"}
	}
	status := StatusOf(te)
	body, _ := json.Marshal(errorBody{Error: te.Message, Kind: te.Kind, Status: status, Attempts: attempts, Route: r.Name})
	p.reply(ctx, r, msg, id, terminal{outcome: headers.OutcomeError, payload: body, attempts: attempts,
		errs:   []abi.AttemptError{attemptError(attempts, te.Kind, te.Status, te.Message)},
		status: status}, start)
}

// StatusOf maps a failure to the HTTP-like status of a sync error reply.
func StatusOf(te *target.Error) int {
	switch te.Kind {
	case abi.ErrorTimeout:
		return 504
	case abi.ErrorRateLimited:
		return 429
	case abi.ErrorBadInput:
		return 400
	case abi.ErrorResultTooLarge:
		return 502
	case abi.ErrorUnknownRoute:
		return 404
	case abi.ErrorStatus:
		if te.Status >= 400 && te.Status < 500 {
			return te.Status
		}
		return 502
	case abi.ErrorInternal:
		return 500
	}
	return 503 // connect, breaker_open, bulkhead_full, switched_off
}
