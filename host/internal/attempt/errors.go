package attempt

import (
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/internal/target"
)

// MaxErrorMessage bounds an attempt's error message (it travels in
// headers, histories and dead letters).
const MaxErrorMessage = 1024

// Error records one failure of attempt, its message bounded.
func Error(attempt uint32, kind abi.ErrorKind, status int, msg string) abi.AttemptError {
	if len(msg) > MaxErrorMessage {
		msg = msg[:MaxErrorMessage] + "…"
	}
	return abi.AttemptError{Attempt: attempt, AtUnixMs: time.Now().UnixMilli(), Kind: kind, Status: int32(status), Message: msg}
}

// Calls counts the attempts in errs that called (or tried to call) a
// target; internal failures are none, and one attempt may hold a failure
// per target.
func Calls(errs []abi.AttemptError) uint32 { return uint32(deadletter.TargetCalls(errs)) }

// BadInputReason is the reason of a dead letter for a message that
// cannot be processed as published.
const BadInputReason = "bad input: the message cannot be processed as published; fix the producer, then replay"

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
	case abi.ErrorStatus, abi.ErrorClassifiedPermanent, abi.ErrorClassifiedRetryable:
		if te.Status >= 400 && te.Status < 600 && (te.Status < 500 || te.Kind != abi.ErrorStatus) {
			return te.Status
		}
		return 502
	case abi.ErrorInternal:
		return 500
	}
	return 503 // connect, breaker_open, bulkhead_full, switched_off
}
