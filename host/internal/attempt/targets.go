package attempt

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/internal/balance"
	"github.com/breakwater-dev/breakwater/host/internal/target"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
	"github.com/breakwater-dev/breakwater/host/policy"
)

// called is what one attempt's calls to the targets gave.
type called struct {
	resp   *target.Response // the answer (err nil)
	target string           // the target that answered, or the last one tried
	err    *target.Error    // the last failure
	errs   []abi.AttemptError
}

// callTargets calls r's targets for one attempt. With a read-through key,
// concurrent identical misses share one call: the others wait for it.
func (c *Core) callTargets(ctx context.Context, r *Route, req *Request, in *abi.Input, key string) called {
	if key == "" || r.Cache.Mode != CacheReadThrough {
		return c.tryTargets(ctx, r, req, in)
	}
	v, _, shared := c.flight.Do(r.Name+"\x00"+key, func() (any, error) {
		return c.tryTargets(ctx, r, req, in), nil
	})
	res := v.(called)
	if shared {
		c.o.Observer.Coalesced(r.Name)
		// The failures are this message's too, numbered as its attempt.
		errs := make([]abi.AttemptError, len(res.errs))
		for i, e := range res.errs {
			e.Attempt = req.Attempt
			errs[i] = e
		}
		res.errs = errs
	}
	return res
}

// tryTargets makes one attempt over r's targets, in the order r.Balance
// gives. A target that refuses the call without making it (kill switch,
// open breaker, full bulkhead, rate limit) passes the attempt on to the
// next target whatever the strategy; with failover, so does a retryable
// failure of a call made.
func (c *Core) tryTargets(ctx context.Context, r *Route, req *Request, in *abi.Input) called {
	var res called
	several := len(r.Targets) > 1
	for _, i := range r.Balance.Order() {
		t := &r.Targets[i]
		res.target = t.Name
		in.Target = t.Name
		resp, te := c.callTarget(ctx, r, t, i, req, in)
		if te == nil {
			res.resp, res.err = resp, nil
			return res
		}
		msg := te.Message
		if several {
			msg = fmt.Sprintf("target %q: %s", t.Name, msg)
		}
		res.err = te
		res.errs = append(res.errs, Error(req.Attempt, te.Kind, te.Status, msg))
		if !passOn(r.Balance.Strategy(), te) || ctx.Err() != nil {
			break
		}
	}
	return res
}

// passOn reports whether a failure passes the attempt on to the next target.
func passOn(s balance.Strategy, te *target.Error) bool {
	switch te.Kind {
	case abi.ErrorSwitchedOff, abi.ErrorBreakerOpen, abi.ErrorBulkheadFull, abi.ErrorRateLimited:
		return true // no call was made
	case abi.ErrorBadInput, abi.ErrorResultTooLarge:
		return false // the message, not the target
	}
	if s != balance.Failover {
		return false
	}
	ok, _ := policy.Retryable(abi.AttemptError{Kind: te.Kind, Status: int32(te.Status)})
	return ok
}

// outlierFailure reports whether te counts against the target for
// outlier ejection: connection errors, timeouts, 5xx, classified
// retryable answers; not a local guard's refusal.
func outlierFailure(te *target.Error) bool {
	switch te.Kind {
	case abi.ErrorConnect, abi.ErrorTimeout, abi.ErrorInternal, abi.ErrorClassifiedRetryable:
		return true
	case abi.ErrorStatus:
		return te.Status >= 500
	}
	return false
}

// callTarget makes one call to target t (index i) under its kill switch,
// guards and the classify policy.
func (c *Core) callTarget(ctx context.Context, r *Route, t *Target, i int, req *Request, in *abi.Input) (*target.Response, *target.Error) {
	if c.o.Switches != nil && !c.o.Switches.Enabled(r.Name, t.Name) {
		c.o.Observer.Attempt(r.Name, t.Name, abi.ErrorSwitchedOff, 0)
		return nil, &target.Error{Kind: abi.ErrorSwitchedOff,
			Message: fmt.Sprintf("route %q or its target %q is switched off (flag %s.enabled or target.%s.enabled); the call was not made", r.Name, t.Name, r.Name, t.Name)}
	}
	timeout := r.Timeout
	if !req.Deadline.IsZero() {
		if timeout = min(timeout, time.Until(req.Deadline)-req.reserve()); timeout <= 0 {
			return nil, errTimeLeft
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx, span := c.o.Tracer.Start(ctx, "breakwater.attempt "+t.Name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(tracing.AttrRoute.String(r.Name), tracing.AttrTarget.String(t.Name), tracing.AttrAttempt.Int64(int64(req.Attempt))))
	defer span.End()
	t0 := time.Now()
	end := r.Balance.Begin(i)
	var resp *target.Response
	var err error
	if t.Guard != nil {
		resp, err = t.Guard.Call(ctx, t.Caller, &target.Request{Message: req.Msg})
		in.BreakerState = t.Guard.BreakerState()
	} else {
		resp, err = t.Caller.Call(ctx, &target.Request{Message: req.Msg})
	}
	end()
	var te *target.Error
	if err != nil {
		te = target.Classify(err)
	}
	if r.Classify.HasModule() {
		resp, te = c.classify(ctx, r, t, req, in, resp, te)
	}
	if te == nil {
		r.Balance.Report(i, false)
		c.o.Observer.Attempt(r.Name, t.Name, "", time.Since(t0))
		return resp, nil
	}
	r.Balance.Report(i, outlierFailure(te))
	c.o.Observer.Attempt(r.Name, t.Name, te.Kind, time.Since(t0))
	span.SetAttributes(tracing.AttrErrorKind.String(string(te.Kind)))
	if te.Status != 0 {
		span.SetAttributes(tracing.AttrStatus.Int(te.Status))
	}
	span.SetStatus(codes.Error, te.Message)
	return nil, te
}

// classify asks the route's classify module about an answer of t (a
// success or a status failure; a call that got no answer is not
// classified). A module that fails leaves the status rules' result.
func (c *Core) classify(ctx context.Context, r *Route, t *Target, req *Request, in *abi.Input, resp *target.Response, te *target.Error) (*target.Response, *target.Error) {
	var status int
	var hdr map[string][]string
	var body []byte
	switch {
	case te == nil:
		status, hdr, body = resp.Status, resp.Headers, resp.Body
	case te.Kind == abi.ErrorStatus:
		status, hdr, body = te.Status, te.Headers, te.Body
	default:
		return resp, te
	}
	cin := *in
	cin.Target, cin.ResponseStatus, cin.ResponseBody = t.Name, int32(status), body
	cin.ResponseHeaders = r.ResponseHeaders.Select(hdr)
	c.completeInput(&cin, req)
	d, by, ok := r.Classify.Decide(ctx, &cin)
	if !ok || by == "native" {
		return resp, te
	}
	var kind abi.ErrorKind
	switch d.Verdict {
	case abi.VerdictSuccess:
		return &target.Response{Status: status, Body: body, Headers: hdr}, nil
	case abi.VerdictRetryable:
		kind = abi.ErrorClassifiedRetryable
	default:
		kind = abi.ErrorClassifiedPermanent
	}
	what := fmt.Sprintf("status %d", status)
	if status == 0 {
		what = "the answer"
	}
	return nil, &target.Error{Kind: kind, Status: status, Headers: hdr, Body: body,
		Message: fmt.Sprintf("%s classified as a %s failure by %s: %s", what, d.Verdict, by, d.Reason)}
}
