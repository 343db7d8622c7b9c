package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// Client calls Breakwater routes over a NATS connection.
type Client struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// New returns a Client using nc.
func New(nc *nats.Conn) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("breakwater client: %w", err)
	}
	return &Client{nc: nc, js: js}, nil
}

// Result is the answer to a call.
type Result struct {
	// Outcome is ok (the target answered), cached (last-known-good), stub,
	// or, on the async path, dead.
	Outcome  string
	Payload  []byte
	Attempts int
	// ErrorKind and Error describe the last failure when Outcome is not ok.
	ErrorKind string
	Error     string
	// CacheAge is the age of a cached answer.
	CacheAge time.Duration
	// Status is the sync path's HTTP-like status of an error reply (0: none).
	Status int
	Header nats.Header
}

// CallError is a sync call Breakwater answered with an error: no answer, no
// cached value and no stub within the deadline.
type CallError struct {
	Route    string
	Status   int    // HTTP-like: 504 timeout, 503 unavailable, 429, 400, 4xx from the target...
	Kind     string // the ABI error kind (timeout, status, connect, breaker_open, ...)
	Message  string
	Attempts int
}

func (e *CallError) Error() string {
	return fmt.Sprintf("route %q: %d %s: %s (after %d attempt(s))", e.Route, e.Status, e.Kind, e.Message, e.Attempts)
}

// CallOption adjusts one call.
type CallOption func(*nats.Msg)

// WithID sets the message id (logs, Idempotency-Key of HTTP targets).
func WithID(id string) CallOption { return func(m *nats.Msg) { m.Header.Set(headers.MsgID, id) } }

// WithHeader sets a header the route's templates and modules can read.
func WithHeader(k, v string) CallOption { return func(m *nats.Msg) { m.Header.Set(k, v) } }

// Call sends payload to route's sync path and waits for the answer. ctx
// must carry a deadline; Breakwater answers within the shorter of it and
// the route's deadline. A Breakwater error reply is a *CallError; a missing
// answer (no runtime serving the route) is nats.ErrNoResponders or a
// context error.
func (c *Client) Call(ctx context.Context, route string, payload []byte, opts ...CallOption) (*Result, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return nil, errors.New("breakwater client: Call needs a context with a deadline")
	}
	m := nats.NewMsg(topology.Call(route))
	m.Data = payload
	// Leave the runtime a little time to deliver its answer before ours expires.
	budget := time.Until(dl) - min(time.Until(dl)/20, 20*time.Millisecond)
	if budget <= 0 {
		return nil, fmt.Errorf("breakwater client: route %q: %w", route, context.DeadlineExceeded)
	}
	m.Header.Set(headers.Deadline, strconv.FormatInt(max(budget.Milliseconds(), 1), 10))
	for _, o := range opts {
		o(m)
	}
	resp, err := c.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("breakwater client: route %q: %w", route, err)
	}
	res := parse(resp.Header, resp.Data)
	if res.Outcome == headers.OutcomeError {
		status, _ := strconv.Atoi(resp.Header.Get(headers.Status))
		return res, &CallError{Route: route, Status: status, Kind: res.ErrorKind, Message: res.Error, Attempts: res.Attempts}
	}
	return res, nil
}

// Publish queues durable async work on bw.in.<route>, de-duplicated by id.
func (c *Client) Publish(ctx context.Context, route, id string, payload []byte, opts ...CallOption) (*jetstream.PubAck, error) {
	m := nats.NewMsg(topology.In(route))
	m.Data = payload
	m.Header.Set(headers.MsgID, id)
	for _, o := range opts {
		o(m)
	}
	ack, err := c.js.PublishMsg(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("breakwater client: publish to %s: %w", m.Subject, err)
	}
	return ack, nil
}

// ParseOutcome reads an outcome message from bw.out.<route> or a reply.
func ParseOutcome(h nats.Header, data []byte) *Result { return parse(h, data) }

func parse(h nats.Header, data []byte) *Result {
	attempts, _ := strconv.Atoi(h.Get(headers.Attempts))
	age, _ := strconv.ParseInt(h.Get(headers.CacheAge), 10, 64)
	status, _ := strconv.Atoi(h.Get(headers.Status))
	return &Result{
		Outcome:   h.Get(headers.Outcome),
		Payload:   data,
		Attempts:  attempts,
		ErrorKind: h.Get(headers.ErrorKind),
		Error:     h.Get(headers.Error),
		CacheAge:  time.Duration(age) * time.Millisecond,
		Status:    status,
		Header:    h,
	}
}
