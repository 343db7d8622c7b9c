package syncpath

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
	"github.com/breakwater-dev/breakwater/host/internal/attempt"
	"github.com/breakwater-dev/breakwater/host/internal/render"
	"github.com/breakwater-dev/breakwater/host/internal/subject"
	"github.com/breakwater-dev/breakwater/host/internal/target"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// CallQueue is the queue group of bw.call subscriptions: instances share
// the sync load.
const CallQueue = "breakwater"

// Options configure a Server.
type Options struct {
	// NC subscribes to bw.call (the worker connection); Replies publishes
	// the answers, and may publish nowhere else.
	NC, Replies *nats.Conn
	Core        *attempt.Core
	Observer    attempt.Observer
	Logger      *slog.Logger
	Tracer      trace.Tracer // nil: none
}

// Server answers sync calls.
type Server struct{ o Options }

// New returns a Server.
func New(o Options) *Server {
	if o.Tracer == nil {
		o.Tracer = tracing.Noop()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Server{o: o}
}

// Work counts requests being answered (shutdown and route removal wait
// for them).
type Work interface {
	Add()
	Done()
}

// Subscribe answers r's bw.call.<route> requests, with work as their
// context, until the subscription ends. Requests beyond the route's
// concurrency are answered from the fallback alone (no target call);
// beyond twice that, with an immediate busy error.
func (s *Server) Subscribe(work context.Context, w Work, r *attempt.Route) (*nats.Subscription, error) {
	slots := make(chan struct{}, r.Concurrency)
	overflow := make(chan struct{}, r.Concurrency)
	sub, err := s.o.NC.QueueSubscribe(topology.Call(r.Name), CallQueue, func(msg *nats.Msg) {
		if msg.Reply == "" {
			s.o.Logger.Warn("sync call without a reply subject ignored; use request-reply (or publish to bw.in for async work)", slog.String("route", r.Name))
			return
		}
		// The reply subject is the requester's choice: the same rules as
		// Bw-Reply-To (and the replies connection may publish nowhere else).
		if err := subject.CheckReply(msg.Reply, r.ReplySubjects); err != nil {
			s.o.Observer.ReplyRefused(r.Name)
			s.o.Logger.Warn("sync call refused: its reply subject is not allowed", slog.String("route", r.Name), slog.String("error", err.Error()))
			return
		}
		for i, sem := range []chan struct{}{slots, overflow} {
			select {
			case sem <- struct{}{}:
				w.Add()
				go func() {
					defer w.Done()
					defer func() { <-sem }()
					s.handle(work, r, msg, i == 1)
				}()
				return
			default:
			}
		}
		s.replyError(work, r, msg, "", 0, "", &target.Error{Kind: abi.ErrorBulkheadFull,
			Message: fmt.Sprintf("route %q is at its concurrency limit (%d) and its fallback queue is full", r.Name, r.Concurrency)}, time.Now())
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing to %s: %w", topology.Call(r.Name), err)
	}
	// Requests wait in the client while all slots are taken; bound them.
	_ = sub.SetPendingLimits(4*r.Concurrency, 64<<20)
	return sub, nil
}

// callDeadline is the shorter of the route's deadline and the caller's;
// a Bw-Deadline-Ms that is not a positive whole number is an error.
func callDeadline(r *attempt.Route, msg *nats.Msg, now time.Time) (time.Time, error) {
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

// handle answers one request within its deadline: attempts while a retry
// fits, then the fallback. overloaded skips the target.
func (s *Server) handle(work context.Context, r *attempt.Route, msg *nats.Msg, overloaded bool) {
	s.o.Observer.InFlight(r.Name, 1)
	defer s.o.Observer.InFlight(r.Name, -1)
	start := time.Now()
	id := msg.Header.Get(headers.MsgID)
	if id == "" {
		id = nuid.Next()
	}
	work, span := s.o.Tracer.Start(tracing.Extract(work, msg.Header), "breakwater.call "+r.Name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(tracing.AttrRoute.String(r.Name), tracing.AttrMessageID.String(id)))
	defer span.End()
	deadline, err := callDeadline(r, msg, start)
	if err != nil {
		s.replyError(work, r, msg, id, 0, "", &target.Error{Kind: abi.ErrorBadInput, Message: err.Error()}, start)
		return
	}
	ctx, cancel := context.WithDeadline(work, deadline)
	defer cancel()
	req := &attempt.Request{
		Msg:             &render.Message{Route: r.Name, Subject: msg.Subject, MessageID: id, Headers: msg.Header, Payload: msg.Data},
		FirstSeen:       start,
		Attempt:         1,
		Deadline:        deadline,
		BestEffortCache: true,
	}
	var res *attempt.Result
	if overloaded {
		busy := &target.Error{Kind: abi.ErrorBulkheadFull, Message: fmt.Sprintf("route %q is at its concurrency limit (%d): answered from the fallback", r.Name, r.Concurrency)}
		res, _ = s.o.Core.Fallback(ctx, r, req, "", []abi.AttemptError{attempt.Error(0, busy.Kind, 0, busy.Message)})
		res.Last = busy
	} else {
		for {
			res, _ = s.o.Core.Attempt(ctx, r, req) // BestEffortCache: no internal error
			if res.Outcome != "" {
				break
			}
			s.o.Observer.Retry(r.Name, req.Attempt, res.RetryDelay)
			t := time.NewTimer(res.RetryDelay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			req.Attempt++
			req.History = res.Errors
		}
	}
	if res.Outcome == headers.OutcomeDead {
		last := res.Last
		if last == nil {
			if e, ok := res.LastError(); ok {
				last = &target.Error{Kind: e.Kind, Status: int(e.Status), Message: e.Message}
			}
		}
		s.replyError(work, r, msg, id, res.Attempts, res.Target, last, start)
		return
	}
	s.reply(work, r, msg, id, res, 0, start)
}

// reply answers a request with res (status: Bw-Status of an error reply)
// and logs the outcome.
func (s *Server) reply(ctx context.Context, r *attempt.Route, msg *nats.Msg, id string, res *attempt.Result, status int, start time.Time) {
	hm, _ := res.Header(r.Name, id)
	h := nats.Header(hm)
	if status != 0 {
		h.Set(headers.Status, strconv.Itoa(status))
	}
	tracing.Inject(ctx, h)
	trace.SpanFromContext(ctx).SetAttributes(tracing.AttrOutcome.String(res.Outcome), tracing.AttrAttempt.Int64(int64(res.Attempts)))
	out := &nats.Msg{Subject: msg.Reply, Header: h, Data: res.Payload}
	if size, limit := attempt.MsgSize(out.Header, out.Data), int(s.o.Replies.MaxPayload()); size > limit && res.Outcome != headers.OutcomeError {
		s.replyError(ctx, r, msg, id, res.Attempts, res.Target, target.TooLarge(fmt.Sprintf("the %s answer (%d bytes)", res.Outcome, size), limit), start)
		return
	}
	if err := s.o.Replies.PublishMsg(out); err != nil {
		// The requester gets no answer: not an outcome.
		s.o.Logger.Warn("sync reply failed; the requester gets no answer", slog.String("route", r.Name), slog.String("message_id", id),
			slog.String("outcome", res.Outcome), slog.String("error", err.Error()))
		return
	}
	attempt.LogOutcome(s.o.Logger, r.Name, id, res, time.Since(start), slog.String("path", "sync"))
	s.o.Observer.Outcome(r.Name, res.Outcome, res.Attempts, time.Since(start))
}

// errorBody is the JSON body of an error reply.
type errorBody struct {
	Error    string        `json:"error"`
	Kind     abi.ErrorKind `json:"kind"`
	Status   int           `json:"status"`
	Attempts uint32        `json:"attempts"`
	Route    string        `json:"route"`
	Target   string        `json:"target,omitempty"`
}

// replyError answers a request with an error reply: outcome error, an
// HTTP-like status in Bw-Status, and a clear message.
func (s *Server) replyError(ctx context.Context, r *attempt.Route, msg *nats.Msg, id string, attempts uint32, tgt string, te *target.Error, start time.Time) {
	if te == nil {
		te = &target.Error{Kind: abi.ErrorInternal, Message: "no answer, no cached value and no stub"}
	}
	status := attempt.StatusOf(te)
	body, _ := json.Marshal(errorBody{Error: te.Message, Kind: te.Kind, Status: status, Attempts: attempts, Route: r.Name, Target: tgt})
	s.reply(ctx, r, msg, id, &attempt.Result{Outcome: headers.OutcomeError, Payload: body, Attempts: attempts, Target: tgt,
		Errors: []abi.AttemptError{attempt.Error(attempts, te.Kind, te.Status, te.Message)}}, status, start)
}
