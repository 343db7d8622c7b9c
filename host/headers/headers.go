package headers

import "strings"

// Set by producers.
const (
	// MsgID is JetStream's de-duplication header: publish twice with the same
	// value within the duplicate window and the message is processed once.
	MsgID = "Nats-Msg-Id"
	// ReplyTo names a subject the outcome is also published to (core NATS).
	ReplyTo = "Bw-Reply-To"
	// Deadline on a bw.call request: the caller's deadline in milliseconds
	// from now; the shorter of it and the route's deadline applies.
	Deadline = "Bw-Deadline-Ms"
)

// Set by Breakwater on outcomes (bw.out.<route>), sync replies and dead letters.
const (
	// Outcome is ok, cached, stub, dead (async) or error (sync).
	Outcome = "Bw-Outcome"
	// Attempts is the number of calls made to the target.
	Attempts = "Bw-Attempts"
	// OriginalID is the producer's Nats-Msg-Id, else the BW_IN stream sequence.
	OriginalID = "Bw-Original-Id"
	// Route is the route name.
	Route = "Bw-Route"
	// Target names the route's target that answered (ok), or the last
	// one tried.
	Target = "Bw-Target"
	// ErrorKind and Error describe the last failure (non-ok outcomes).
	ErrorKind = "Bw-Error-Kind"
	Error     = "Bw-Error"
	// Status is the sync path's status code for error replies (HTTP-like: 503, 504, 400...).
	Status = "Bw-Status"
	// CacheAge is the age in milliseconds of a cached answer.
	CacheAge = "Bw-Cache-Age-Ms"
	// Replayed marks a message put back on bw.in by `runtime dlq replay`.
	Replayed = "Bw-Replayed-From"
	// ReplayOf is the producer's original message id of a replayed
	// message, kept through repeated replays.
	ReplayOf = "Bw-Replay-Of"
)

// Reserved reports whether a header is in a namespace the runtime owns
// (Nats-, Bw-, any case): stubs may not set such headers.
func Reserved(name string) bool {
	return len(name) >= 3 && strings.EqualFold(name[:3], "bw-") || len(name) >= 5 && strings.EqualFold(name[:5], "nats-")
}

// Settable reports whether a target's response or a stub may set header
// name on an outcome: a valid name outside the runtime's namespaces and
// not the trace context, which only the runtime writes.
func Settable(name string) bool {
	return Token(name) && !Reserved(name) && !strings.EqualFold(name, "traceparent") && !strings.EqualFold(name, "tracestate")
}

// NATS reports whether a header is in the Nats- namespace, which tells the
// server what to do with a publish (Nats-Expected-Stream, Nats-TTL, …).
func NATS(name string) bool { return len(name) >= 5 && strings.EqualFold(name[:5], "nats-") }

// Token reports whether name can be a header name: printable ASCII with
// no white space or ':'. A message with any other name cannot be sent.
func Token(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// Outcome values.
const (
	OutcomeOK     = "ok"
	OutcomeCached = "cached"
	OutcomeStub   = "stub"
	OutcomeDead   = "dead"
	OutcomeError  = "error"
)
