package target

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/internal/render"
)

// Request is one call to a target.
type Request struct {
	// Message is the inbound message; its payload is the request body and
	// templates (URL) render against it.
	Message *render.Message
}

// Response is a target's successful answer.
type Response struct {
	Status  int // HTTP status; 0 for NATS targets
	Body    []byte
	Headers map[string][]string
}

// Caller calls one target. Implementations are safe for concurrent use.
// ctx must carry a deadline: the route's timeout.
type Caller interface {
	Call(ctx context.Context, req *Request) (*Response, error)
}

// Error is a classified call failure.
type Error struct {
	Kind    abi.ErrorKind
	Status  int    // for ErrorStatus
	Message string // human-readable: what happened
	Err     error  // underlying cause, if any
	// Headers and Body are the target's answer, when it answered (a
	// status failure), for the classify policy.
	Headers map[string][]string
	Body    []byte
	// RetryAfter is the target's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s %d: %s", e.Kind, e.Status, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Classify turns any error into a *Error: an *Error passes through; a
// context deadline becomes a timeout; anything else is internal.
func Classify(err error) *Error {
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: abi.ErrorTimeout, Message: "deadline exceeded", Err: err}
	}
	return &Error{Kind: abi.ErrorInternal, Message: err.Error(), Err: err}
}

// TooLarge is the error of an answer over limit bytes: it would not fit in
// an outcome message, and asking again would not make it smaller.
func TooLarge(what string, limit int) *Error {
	return &Error{Kind: abi.ErrorResultTooLarge, Message: fmt.Sprintf("%s: the answer is over %d bytes, more than an outcome can carry (the server's max_payload less the outcome's headers)", what, limit)}
}
