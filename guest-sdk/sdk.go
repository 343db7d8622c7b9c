package guest

import "github.com/breakwater-dev/breakwater/guest-sdk/abi"

// Version is the ABI version this SDK implements; every module built with it
// reports it from bw_abi_version.
const Version = abi.Version

// The records exchanged with the host. They are aliases of the abi package's
// types, so values convert freely between the two packages.
type (
	// Input is what the host hands to every policy function: the route, the
	// message, the failed attempt, the breaker state, the route's config.
	Input = abi.Input
	// AttemptError describes the failed attempt (Input.Error).
	AttemptError = abi.AttemptError
	// ErrorKind classifies a failure (AttemptError.Kind).
	ErrorKind = abi.ErrorKind
	// RetryDecision is what a retry policy returns.
	RetryDecision = abi.RetryDecision
	// FallbackAction names what the host does once retries are over.
	FallbackAction = abi.FallbackAction
	// FallbackDecision is what a fallback policy returns.
	FallbackDecision = abi.FallbackDecision
	// Stub is what a stub generator returns.
	Stub = abi.Stub
	// Verdict is what a classify module makes of the target's answer.
	Verdict = abi.Verdict
	// ClassifyDecision is what a classify module returns.
	ClassifyDecision = abi.ClassifyDecision
)

// The error kinds of ABI v1 (see abi.ErrorKind). Treat kinds you do not know
// like ErrorInternal: a newer host may add some.
const (
	ErrorNone         = abi.ErrorNone
	ErrorTimeout      = abi.ErrorTimeout
	ErrorStatus       = abi.ErrorStatus
	ErrorConnect      = abi.ErrorConnect
	ErrorBreakerOpen  = abi.ErrorBreakerOpen
	ErrorSwitchedOff  = abi.ErrorSwitchedOff
	ErrorBulkheadFull = abi.ErrorBulkheadFull
	ErrorRateLimited  = abi.ErrorRateLimited
	ErrorBadInput     = abi.ErrorBadInput
	ErrorUnknownRoute = abi.ErrorUnknownRoute
	ErrorInternal     = abi.ErrorInternal
	// ErrorResultTooLarge: the target's answer did not fit in an outcome.
	ErrorResultTooLarge = abi.ErrorResultTooLarge
	// ErrorClassifiedRetryable and ErrorClassifiedPermanent: the target
	// answered, and the route's classify module judged the answer a failure,
	// retryable or not.
	ErrorClassifiedRetryable = abi.ErrorClassifiedRetryable
	ErrorClassifiedPermanent = abi.ErrorClassifiedPermanent
)

// The verdicts of a classify module (see abi.Verdict).
const (
	VerdictSuccess   = abi.VerdictSuccess
	VerdictRetryable = abi.VerdictRetryable
	VerdictPermanent = abi.VerdictPermanent
)

// The fallback actions of ABI v1 (see abi.FallbackAction).
const (
	FallbackCache      = abi.FallbackCache
	FallbackStub       = abi.FallbackStub
	FallbackDeadLetter = abi.FallbackDeadLetter
	FallbackFail       = abi.FallbackFail
)
