package target

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
)

// ServiceErrorCodeHeader is how NATS micro services report an error status;
// a reply carrying it is a failed call with that status.
const ServiceErrorCodeHeader = "Nats-Service-Error-Code"

// NATS calls a NATS service by request-reply.
type NATS struct {
	nc      *nats.Conn
	subject string
	maxBody int
	forward *HeaderFilter
}

// NewNATS returns a caller sending requests to subject over nc. A reply
// over maxBody bytes fails with kind result_too_large. forward says which
// of the message's headers go with the request (AllHeaders: every one).
func NewNATS(nc *nats.Conn, subject string, maxBody int, forward *HeaderFilter) *NATS {
	return &NATS{nc: nc, subject: subject, maxBody: maxBody, forward: forward}
}

// Call sends the payload and headers as a request and waits for the reply.
func (n *NATS) Call(ctx context.Context, req *Request) (*Response, error) {
	m := nats.NewMsg(n.subject)
	m.Data = req.Message.Payload
	for k, v := range req.Message.Headers {
		if n.forward.Pass(k) {
			m.Header[k] = v
		}
	}
	tracing.Inject(ctx, m.Header) // the trace goes on to the service
	reply, err := n.nc.RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &Error{Kind: abi.ErrorConnect, Message: fmt.Sprintf("nats %s: no responders", n.subject), Err: err}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return nil, &Error{Kind: abi.ErrorTimeout, Message: fmt.Sprintf("nats %s: no reply within the timeout", n.subject), Err: err}
	case err != nil:
		return nil, &Error{Kind: abi.ErrorConnect, Message: fmt.Sprintf("nats %s: %v", n.subject, err), Err: err}
	}
	if code := reply.Header.Get(ServiceErrorCodeHeader); code != "" {
		status, _ := strconv.Atoi(code)
		return nil, &Error{Kind: abi.ErrorStatus, Status: status, Message: fmt.Sprintf("nats %s answered error %s: %s", n.subject, code, snippet(reply.Data)),
			Headers: reply.Header, RetryAfter: RetryAfter(reply.Header.Get("Retry-After"), time.Now())}
	}
	if len(reply.Data) > n.maxBody {
		return nil, TooLarge("nats "+n.subject, n.maxBody)
	}
	return &Response{Body: reply.Data, Headers: reply.Header}, nil
}
