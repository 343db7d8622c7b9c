package attempt

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/render"
	"github.com/breakwater-dev/breakwater/host/internal/target"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
)

// maxRetryDelay caps a retry delay a policy asks for.
const maxRetryDelay = time.Hour

// fallbackReserve is the share of a deadline kept for the fallback (cache
// lookup, stub) once the target has failed, capped at maxReserve.
const (
	fallbackReserveDiv = 10
	maxReserve         = 50 * time.Millisecond
)

// Options are what every attempt shares.
type Options struct {
	Cache    Cache    // nil: routes cannot cache
	Switches Switches // nil: always on
	Observer Observer
	Tracer   trace.Tracer // nil: none
	Logger   *slog.Logger
}

// Core makes attempts. Safe for concurrent use.
type Core struct {
	o      Options
	flight singleflight.Group
}

// New returns a Core.
func New(o Options) *Core {
	if o.Tracer == nil {
		o.Tracer = tracing.Noop()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Core{o: o}
}

// Request is one attempt at a message.
type Request struct {
	// Msg is the message: route, subject, id, headers, payload.
	Msg *render.Message
	// FirstSeen is when the message was first published.
	FirstSeen time.Time
	// Attempt is this attempt's number, 1-based; above the route's max
	// attempts no target is called (the fallback serves).
	Attempt uint32
	// History holds the message's earlier failures, oldest first.
	History []abi.AttemptError
	// Deadline (sync) bounds the attempt and keeps time for the fallback;
	// zero: none (each call has the route's timeout).
	Deadline time.Time
	// BestEffortCache (sync): a failed cache read is logged and the
	// fallback goes on without a cached value, instead of failing the
	// attempt with an internal error (async: the message is redelivered).
	BestEffortCache bool
}

// reserve is the time kept for the fallback before req's deadline.
func (req *Request) reserve() time.Duration {
	if req.Deadline.IsZero() {
		return 0
	}
	return min(time.Until(req.Deadline)/fallbackReserveDiv, maxReserve)
}

// Attempt makes one attempt at req: a fresh read-through hit, else a call
// to the route's targets, then, on failure, the retry decision and, when
// the message will not be retried, the fallback. A Result with Outcome ""
// asks for a retry after RetryDelay. The error is an internal failure (a
// cache read the fallback needed); nothing was decided.
func (c *Core) Attempt(ctx context.Context, r *Route, req *Request) (*Result, error) {
	in := c.input(r, req)
	res := &Result{Errors: req.History, Attempts: Calls(req.History), in: in}
	key, err := c.cacheKey(r, req)
	if err != nil {
		res.Errors = append(res.Errors, Error(req.Attempt, abi.ErrorBadInput, 0, err.Error()))
		res.Outcome, res.Reason = headers.OutcomeDead, BadInputReason
		return res, nil
	}
	res.key = key
	if key != "" && r.Cache.Mode == CacheReadThrough && c.o.Cache != nil {
		e, ok, err := c.o.Cache.Get(ctx, r.Name, key, r.Cache.Fresh)
		if err != nil {
			c.o.Logger.Warn("read-through cache lookup failed; calling the target", slog.String("route", r.Name), slog.String("message_id", req.Msg.MessageID), slog.String("error", err.Error()))
		} else if ok {
			res.Outcome, res.Payload, res.CacheAge = headers.OutcomeCached, e.Value, e.Age
			res.Reason = "fresh cached value (read_through)"
			return res, nil
		}
	}
	if req.Attempt > r.MaxAttempts {
		// Every attempt was made and failed, but no outcome was recorded
		// (the fallback's failed): do not call the target again.
		res.Reason = "attempts exhausted"
		return c.fallback(ctx, r, req, res)
	}
	res.Attempts = req.Attempt
	call := c.callTargets(ctx, r, req, in, key)
	res.Target = call.target
	if call.err == nil {
		if key != "" && c.o.Cache != nil {
			if err := c.o.Cache.Put(ctx, r.Name, key, call.resp.Body); err != nil {
				c.o.Logger.Warn("storing the answer in the cache failed", slog.String("route", r.Name), slog.String("message_id", req.Msg.MessageID), slog.String("error", err.Error()))
			}
		}
		res.Outcome, res.Payload = headers.OutcomeOK, call.resp.Body
		res.RespHeaders = r.ResponseHeaders.Select(call.resp.Headers)
		return res, nil
	}
	res.Errors = append(res.Errors[:len(res.Errors):len(res.Errors)], call.errs...)
	res.Last = call.err
	in.Error = res.Errors[len(res.Errors)-1]
	in.ResponseHeaders = r.ResponseHeaders.Select(call.err.Headers)
	in.RetryAfterMs = call.err.RetryAfter.Milliseconds()
	switch call.err.Kind {
	case abi.ErrorBadInput:
		res.Outcome, res.Reason = headers.OutcomeDead, BadInputReason
		return res, nil
	case abi.ErrorResultTooLarge:
		// Asking again would not make the answer smaller.
		res.Reason = "the target's answer is too large for an outcome; not retried"
		return c.fallback(ctx, r, req, res)
	}
	c.completeInput(in, req)
	if !req.Deadline.IsZero() {
		in.ElapsedMs = time.Since(req.FirstSeen).Milliseconds()
		in.DeadlineMs = time.Until(req.Deadline).Milliseconds()
	}
	d, by, _ := r.Retry.Decide(ctx, in) // the native retry policy always decides
	res.DecidedBy = "retry=" + by
	if d.Retry && in.Attempt >= in.MaxAttempts {
		d = abi.RetryDecision{Reason: "attempts exhausted (policy asked for more than max_attempts)"}
	}
	delay := time.Duration(min(max(d.DelayMs, 0), maxRetryDelay.Milliseconds())) * time.Millisecond
	if d.Retry && !req.Deadline.IsZero() && time.Until(req.Deadline)-req.reserve()-delay <= 0 {
		d = abi.RetryDecision{Reason: fmt.Sprintf("no time left before the deadline for a retry after %v", delay)}
	}
	res.Reason = d.Reason
	if d.Retry {
		res.RetryDelay = delay
		return res, nil
	}
	return c.fallback(ctx, r, req, res)
}

// Fallback serves req without calling a target (the sync path's overflow,
// say): prior holds the failures so far and the reason.
func (c *Core) Fallback(ctx context.Context, r *Route, req *Request, reason string, prior []abi.AttemptError) (*Result, error) {
	in := c.input(r, req)
	res := &Result{Errors: prior, Attempts: Calls(prior), Reason: reason, in: in}
	if len(prior) > 0 {
		in.Error = prior[len(prior)-1]
	}
	key, err := c.cacheKey(r, req)
	if err != nil {
		res.Errors = append(res.Errors, Error(req.Attempt, abi.ErrorBadInput, 0, err.Error()))
		res.Outcome, res.Reason = headers.OutcomeDead, BadInputReason
		return res, nil
	}
	res.key = key
	return c.fallback(ctx, r, req, res)
}

// fallback completes res for a message that will not be retried: a cached
// value, a stub, or a dead letter, as the fallback policy chooses.
func (c *Core) fallback(ctx context.Context, r *Route, req *Request, res *Result) (*Result, error) {
	in := res.in
	if in.Error.Kind == "" && len(res.Errors) > 0 {
		in.Error = res.Errors[len(res.Errors)-1]
	}
	c.completeInput(in, req)
	var cached struct {
		value []byte
		age   time.Duration
	}
	if res.key != "" && c.o.Cache != nil {
		e, ok, err := c.o.Cache.Get(ctx, r.Name, res.key, r.Cache.MaxAge)
		switch {
		case err != nil && !req.BestEffortCache:
			return nil, err
		case err != nil:
			c.o.Logger.Warn("cache lookup failed during fallback; going on without it", slog.String("route", r.Name), slog.String("message_id", req.Msg.MessageID), slog.String("error", err.Error()))
		case ok:
			cached.value, cached.age = e.Value, e.Age
			in.CacheAvailable, in.CacheAgeMs = true, e.Age.Milliseconds()
		}
	}
	fd, by, _ := r.Fallback.Decide(ctx, in) // the native fallback always decides
	res.DecidedBy = joinNonEmpty(" ", res.DecidedBy, "fallback="+by)
	res.Reason = joinNonEmpty("; ", res.Reason, fd.Reason)
	res.Outcome = headers.OutcomeDead
	switch fd.Action {
	case abi.FallbackCache:
		if in.CacheAvailable {
			res.Outcome, res.Payload, res.CacheAge = headers.OutcomeCached, cached.value, cached.age
			return res, nil
		}
		fallthrough
	case abi.FallbackStub:
		if s, by, ok := r.Stub.Decide(ctx, in); ok {
			res.Outcome, res.Payload, res.StubHeaders = headers.OutcomeStub, s.Payload, s.Headers
			res.DecidedBy += " stub=" + by
		}
	}
	return res, nil
}

func joinNonEmpty(sep, a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + sep + b
}

// input is the policy input of req.
func (c *Core) input(r *Route, req *Request) *abi.Input {
	return &abi.Input{
		Route:       r.Name,
		Subject:     req.Msg.Subject,
		MessageID:   req.Msg.MessageID,
		Attempt:     req.Attempt,
		MaxAttempts: r.MaxAttempts,
		ElapsedMs:   time.Since(req.FirstSeen).Milliseconds(),
		Payload:     req.Msg.Payload,
	}
}

// completeInput fills in what only policies read (headers, flags), once,
// just before the first policy is asked: a message that succeeds on its
// first call never pays for it.
func (c *Core) completeInput(in *abi.Input, req *Request) {
	if in.Headers == nil {
		in.Headers = flatten(req.Msg.Headers)
	}
	if in.Flags == nil && c.o.Switches != nil {
		in.Flags = c.o.Switches.ForRoute(in.Route)
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

// cacheKey renders r's cache key for req ("" when r does not cache); an
// error means the message cannot be processed as published.
func (c *Core) cacheKey(r *Route, req *Request) (string, error) {
	if r.Cache.Key == nil {
		return "", nil
	}
	return r.Cache.Key.Execute(req.Msg)
}

// PolicyFailed is the decision.Failed of routes built for this core: it
// counts and logs a module that failed (the native policy decided).
func (c *Core) PolicyFailed(ctx context.Context, route, kind, module string, in *abi.Input, err error) {
	c.o.Observer.PolicyFailed(route, kind, module, err)
	c.o.Logger.LogAttrs(ctx, slog.LevelWarn, "policy module failed; using the native policy",
		slog.String("route", route), slog.String("kind", kind), slog.String("module", module),
		slog.String("message_id", in.MessageID), slog.Uint64("attempt", uint64(in.Attempt)),
		slog.String("error", err.Error()))
}

// errTimeLeft is the failure of a call the deadline left no time for.
var errTimeLeft = &target.Error{Kind: abi.ErrorTimeout, Message: "the deadline left no time to call the target"}
