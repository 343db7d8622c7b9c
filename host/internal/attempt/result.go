package attempt

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/target"
)

// Result is what an attempt reached: a terminal outcome, or (Outcome "")
// a retry after RetryDelay.
type Result struct {
	// Outcome is headers.OutcomeOK, OutcomeCached, OutcomeStub or
	// OutcomeDead; "" asks for a retry.
	Outcome    string
	RetryDelay time.Duration
	// Payload is the answer, the cached value or the stub (not for dead).
	Payload []byte
	// RespHeaders are the target's response headers the route lets
	// through (ok); StubHeaders the stub's.
	RespHeaders, StubHeaders map[string]string
	CacheAge                 time.Duration
	// Target names the target that answered, or the last one tried.
	Target string
	// Errors is the message's whole failure history, oldest first.
	Errors []abi.AttemptError
	// Attempts counts the attempts made.
	Attempts uint32
	// Last is this attempt's last failure (nil when none was made).
	Last *target.Error
	// Reason says why the outcome (policies' reasons).
	Reason string
	// DecidedBy names the policies that decided, for logs:
	// "retry=<module@version|native> fallback=… stub=…".
	DecidedBy string

	in  *abi.Input
	key string
}

// LastError is the last failure in the history (zero when none).
func (r *Result) LastError() (abi.AttemptError, bool) {
	if len(r.Errors) == 0 {
		return abi.AttemptError{}, false
	}
	return r.Errors[len(r.Errors)-1], true
}

// Header builds the outcome headers both paths send: the target's or the
// stub's headers (dropped, and counted, when in the runtime's namespaces
// or not valid names), then the runtime's own. Each path adds its own on
// top (async: Nats-Msg-Id; sync: Bw-Status) and the trace context.
func (r *Result) Header(route, id string) (h map[string][]string, dropped int) {
	h = make(map[string][]string, 8+len(r.RespHeaders)+len(r.StubHeaders))
	for k, v := range r.RespHeaders {
		if headers.Settable(k) {
			h[k] = []string{v}
		}
	}
	for k, v := range r.StubHeaders {
		if !headers.Settable(k) {
			dropped++
			continue
		}
		h[k] = []string{v}
	}
	set := func(k, v string) { h[k] = []string{v} }
	set(headers.Outcome, r.Outcome)
	set(headers.Attempts, strconv.FormatUint(uint64(r.Attempts), 10))
	set(headers.OriginalID, id)
	set(headers.Route, route)
	if r.Target != "" {
		set(headers.Target, r.Target)
	}
	if last, ok := r.LastError(); ok {
		set(headers.ErrorKind, string(last.Kind))
		set(headers.Error, last.Message)
	}
	if r.Outcome == headers.OutcomeCached {
		set(headers.CacheAge, strconv.FormatInt(r.CacheAge.Milliseconds(), 10))
	}
	return h, dropped
}

// LogOutcome logs a terminal outcome, the same way on both paths; extra
// are the path's own attributes.
func LogOutcome(log *slog.Logger, route, id string, r *Result, took time.Duration, extra ...slog.Attr) {
	level := slog.LevelInfo
	if r.Outcome == headers.OutcomeDead || r.Outcome == headers.OutcomeError {
		level = slog.LevelWarn
	}
	if !log.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, 12+len(extra))
	attrs = append(attrs, slog.String("route", route), slog.String("message_id", id))
	attrs = append(attrs, extra...)
	attrs = append(attrs, slog.Uint64("attempts", uint64(r.Attempts)), slog.String("outcome", r.Outcome), slog.Float64("duration_ms", Millis(took)))
	if r.Target != "" {
		attrs = append(attrs, slog.String("target", r.Target))
	}
	if last, ok := r.LastError(); ok {
		attrs = append(attrs, slog.String("error_kind", string(last.Kind)), slog.String("error", last.Message))
	}
	if r.Reason != "" {
		attrs = append(attrs, slog.String("reason", r.Reason))
	}
	if r.DecidedBy != "" {
		attrs = append(attrs, slog.String("decided_by", r.DecidedBy))
	}
	log.LogAttrs(context.Background(), level, "outcome", attrs...)
}

// LogRetry logs a scheduled retry.
func LogRetry(log *slog.Logger, route, id string, r *Result) {
	attrs := []slog.Attr{slog.String("route", route), slog.String("message_id", id), slog.Uint64("attempt", uint64(r.Attempts)),
		slog.String("outcome", "retry"), slog.Float64("delay_ms", Millis(r.RetryDelay)), slog.String("target", r.Target)}
	if last, ok := r.LastError(); ok {
		attrs = append(attrs, slog.String("error_kind", string(last.Kind)), slog.String("error", last.Message))
	}
	// Only the retry policy decided: name it alone ("module@vN" or "native").
	attrs = append(attrs, slog.String("reason", r.Reason), slog.String("decided_by", strings.TrimPrefix(r.DecidedBy, "retry=")))
	log.LogAttrs(context.Background(), slog.LevelInfo, "retry scheduled", attrs...)
}

// Millis is d in milliseconds, for log lines people read.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// MsgSize is what a message with header h and data counts against the
// server's max_payload.
func MsgSize(h map[string][]string, data []byte) int {
	n := len(data) + len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
