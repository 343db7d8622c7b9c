package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/internal/render"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
)

// HTTP calls an HTTP endpoint.
type HTTP struct {
	method  string
	url     *render.Template
	headers http.Header
	client  *http.Client
	maxBody int
	forward *HeaderFilter
}

// NewHTTP returns a caller for method and url (a template over the message)
// with fixed extra headers. client may be nil for a shared pooled client.
// A response body over maxBody bytes fails with kind result_too_large.
// forward says which of the message's headers are copied to the request
// (nil: none but Content-Type); the fixed headers and Idempotency-Key win.
func NewHTTP(method, url string, headers map[string]string, client *http.Client, maxBody int, forward *HeaderFilter) (*HTTP, error) {
	t, err := render.Parse("url", url)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for k, v := range headers {
		h.Set(k, v)
	}
	if client == nil {
		client = sharedClient
	}
	return &HTTP{method: method, url: t, headers: h, client: client, maxBody: maxBody, forward: forward}, nil
}

var sharedClient = &http.Client{Transport: &http.Transport{
	Proxy:               nil, // targets are called directly; a proxy would be a surprise
	DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConns:        1024,
	MaxIdleConnsPerHost: 256,
	IdleConnTimeout:     90 * time.Second,
}}

// Call sends the message payload as the request body (none for GET/DELETE).
func (h *HTTP) Call(ctx context.Context, req *Request) (*Response, error) {
	u, err := h.url.Execute(req.Message)
	if err != nil {
		return nil, &Error{Kind: abi.ErrorBadInput, Message: err.Error(), Err: err}
	}
	var body io.Reader
	if h.method != http.MethodGet && h.method != http.MethodDelete {
		body = bytes.NewReader(req.Message.Payload)
	}
	hr, err := http.NewRequestWithContext(ctx, h.method, u, body)
	if err != nil {
		return nil, &Error{Kind: abi.ErrorBadInput, Message: fmt.Sprintf("building request for %s: %v", u, err), Err: err}
	}
	for k, v := range req.Message.Headers {
		if h.forward.Pass(k) {
			ck := http.CanonicalHeaderKey(k)
			hr.Header[ck] = append(hr.Header[ck], v...)
		}
	}
	// The route's fixed headers replace what a producer sent.
	for k, v := range h.headers {
		hr.Header[k] = v
	}
	if ct := req.Message.Headers["Content-Type"]; len(ct) > 0 && hr.Header.Get("Content-Type") == "" {
		hr.Header.Set("Content-Type", ct[0])
	}
	tracing.Inject(ctx, hr.Header) // the trace goes on to the target
	if id := req.Message.MessageID; id != "" {
		hr.Header.Set("Idempotency-Key", id) // at-least-once delivery: let the target de-duplicate
	}
	resp, err := h.client.Do(hr)
	if err != nil {
		return nil, classifyHTTP(ctx, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(h.maxBody)+1))
	if err != nil {
		return nil, classifyHTTP(ctx, u, err)
	}
	if len(b) > h.maxBody {
		return nil, TooLarge(fmt.Sprintf("%s %s", h.method, u), h.maxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &Error{Kind: abi.ErrorStatus, Status: resp.StatusCode, Message: fmt.Sprintf("%s %s answered %s: %s", h.method, u, resp.Status, snippet(b)),
			Headers: resp.Header, Body: b, RetryAfter: RetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	return &Response{Status: resp.StatusCode, Body: b, Headers: resp.Header}, nil
}

func classifyHTTP(ctx context.Context, u string, err error) *Error {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded || (errors.As(err, &ne) && ne.Timeout()):
		return &Error{Kind: abi.ErrorTimeout, Message: fmt.Sprintf("%s: no answer within the timeout", u), Err: err}
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return &Error{Kind: abi.ErrorConnect, Message: fmt.Sprintf("%s: %v", u, err), Err: err}
	}
	var de *net.DNSError
	var oe *net.OpError
	if errors.As(err, &de) || (errors.As(err, &oe) && oe.Op == "dial") {
		return &Error{Kind: abi.ErrorConnect, Message: fmt.Sprintf("%s: %v", u, err), Err: err}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Kind: abi.ErrorConnect, Message: fmt.Sprintf("%s: connection closed: %v", u, err), Err: err}
	}
	return &Error{Kind: abi.ErrorInternal, Message: fmt.Sprintf("%s: %v", u, err), Err: err}
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
