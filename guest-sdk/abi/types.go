package abi

// Version is the ABI version this package speaks. A module reports the
// version it was built for from its exported bw_abi_version function; the
// host refuses modules whose version it does not support.
const Version = 1

// ErrorKind classifies why a call to a target failed. The set is closed for a
// given ABI version; guests must treat unknown kinds like ErrorInternal.
type ErrorKind string

// The error kinds of ABI v1.
const (
	ErrorNone         ErrorKind = ""             // no error (stub generation on the success-less sync path, for instance)
	ErrorTimeout      ErrorKind = "timeout"      // the target did not answer within the route's timeout
	ErrorStatus       ErrorKind = "status"       // the target answered with a non-success status (see AttemptError.Status)
	ErrorConnect      ErrorKind = "connect"      // the target could not be reached (refused, DNS, no responders)
	ErrorBreakerOpen  ErrorKind = "breaker_open" // the target's circuit breaker is open: the call was not made
	ErrorSwitchedOff  ErrorKind = "switched_off" // a kill switch disabled the route or target: the call was not made
	ErrorBulkheadFull ErrorKind = "bulkhead_full"
	ErrorRateLimited  ErrorKind = "rate_limited"
	ErrorBadInput     ErrorKind = "bad_input"     // the message itself is unusable (e.g. the cache key template cannot read it)
	ErrorUnknownRoute ErrorKind = "unknown_route" // the message was published on a subject no route serves
	ErrorInternal     ErrorKind = "internal"      // anything else
	// ErrorResultTooLarge: the target's answer would not fit in an outcome
	// (the server's max_payload); it is not retried.
	ErrorResultTooLarge ErrorKind = "result_too_large"
	// ErrorClassifiedRetryable: the target answered, and the route's
	// classify module judged the answer a failure that another attempt may
	// cure (a 200 whose body reports a transient error, say). Status, when
	// the answer had one, is in AttemptError.Status; the module's reason in
	// AttemptError.Message.
	ErrorClassifiedRetryable ErrorKind = "classified_retryable"
	// ErrorClassifiedPermanent: the target answered, and the route's
	// classify module judged the answer a failure that another attempt
	// cannot cure: it is not retried.
	ErrorClassifiedPermanent ErrorKind = "classified_permanent"
)

// AttemptError describes one failed attempt.
//
// Wire fields: 1 attempt (varint), 2 at_unix_ms (varint), 3 kind (string),
// 4 status (varint), 5 message (string).
type AttemptError struct {
	Attempt  uint32    `json:"attempt"`
	AtUnixMs int64     `json:"at_unix_ms"`
	Kind     ErrorKind `json:"kind"`
	Status   int32     `json:"status,omitempty"`
	Message  string    `json:"message"`
}

// Input is the record the host hands to every policy function.
//
// Wire fields: 1 route, 2 subject, 3 message_id (strings); 4 attempt,
// 5 max_attempts (varint); 6 elapsed_ms (varint); 7 error (AttemptError,
// embedded message); 8 breaker_state (string); 9 flags and 10 headers
// (repeated entries, each an embedded message {1 key, 2 value}); 11 payload
// (bytes); 12 config (bytes, the route's JSON config for this module);
// 13 cache_available (varint bool); 14 cache_age_ms (varint);
// 15 deadline_ms (varint, remaining time on the sync path, 0 on the async path);
// 16 response_headers (repeated entries); 17 retry_after_ms (varint);
// 18 target (string); 19 response_status (varint); 20 response_body (bytes).
type Input struct {
	Route       string `json:"route"`
	Subject     string `json:"subject"`
	MessageID   string `json:"message_id"`
	Attempt     uint32 `json:"attempt"` // 1-based number of the attempt that just failed
	MaxAttempts uint32 `json:"max_attempts"`
	ElapsedMs   int64  `json:"elapsed_ms"` // since the message was first published
	Error       AttemptError
	// BreakerState is "closed", "open" or "half_open" ("" when the route has no breaker).
	BreakerState   string            `json:"breaker_state"`
	Flags          map[string]string `json:"flags,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	Payload        []byte            `json:"payload,omitempty"`
	Config         []byte            `json:"config,omitempty"`
	CacheAvailable bool              `json:"cache_available"`
	CacheAgeMs     int64             `json:"cache_age_ms"`
	DeadlineMs     int64             `json:"deadline_ms,omitempty"`
	// ResponseHeaders are the target's response headers of the attempt
	// that just failed, as the route's response_headers allow.
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	// RetryAfterMs is the target's Retry-After (seconds or an HTTP date)
	// in milliseconds from now; 0 when it sent none.
	RetryAfterMs int64 `json:"retry_after_ms,omitempty"`
	// Target is the name of the target that answered (or failed to).
	Target string `json:"target,omitempty"`
	// ResponseStatus is the status of the target's answer (an HTTP status);
	// 0 for NATS targets, or when there was no answer.
	ResponseStatus int32 `json:"response_status,omitempty"`
	// ResponseBody is the body of the target's answer, for a classify
	// module (the host may leave it out for the other kinds). With
	// ResponseHeaders and ResponseStatus it is the answer to classify.
	ResponseBody []byte `json:"response_body,omitempty"`
}

// RetryDecision is the output of a retry policy.
//
// Wire fields: 1 retry (varint bool), 2 delay_ms (varint), 3 reason (string).
type RetryDecision struct {
	Retry   bool   `json:"retry"`
	DelayMs int64  `json:"delay_ms"`
	Reason  string `json:"reason,omitempty"`
}

// FallbackAction names what the host does once retries are over.
type FallbackAction string

// The fallback actions of ABI v1.
const (
	FallbackCache      FallbackAction = "cache"       // serve the last-known-good value (falls through to stub, then dead letter, when none is fresh)
	FallbackStub       FallbackAction = "stub"        // serve what the route's stub generator makes
	FallbackDeadLetter FallbackAction = "dead_letter" // park the message on bw.dlq.<route> for manual review
	FallbackFail       FallbackAction = "fail"        // sync path: answer with an error; async path: same as dead_letter (work is never dropped)
)

// FallbackDecision is the output of a fallback policy.
//
// Wire fields: 1 action (string), 2 reason (string).
type FallbackDecision struct {
	Action FallbackAction `json:"action"`
	Reason string         `json:"reason,omitempty"`
}

// Verdict is what a classify module makes of the target's answer.
type Verdict string

// The verdicts of ABI v1.
const (
	VerdictSuccess   Verdict = "success"   // the call succeeded: the answer is delivered
	VerdictRetryable Verdict = "retryable" // a failure another attempt may cure (ErrorClassifiedRetryable)
	VerdictPermanent Verdict = "permanent" // a failure no attempt will cure (ErrorClassifiedPermanent)
)

// ClassifyDecision is the output of a classify module: whether the target's
// answer (Input.ResponseStatus, ResponseHeaders, ResponseBody) is a
// success, a retryable failure or a permanent one.
//
// Wire fields: 1 verdict (string, required), 2 reason (string).
type ClassifyDecision struct {
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason,omitempty"`
}

// Stub is the output of a stub generator.
//
// Wire fields: 1 payload (bytes), 2 headers (repeated {1 key, 2 value}).
type Stub struct {
	Payload []byte            `json:"payload"`
	Headers map[string]string `json:"headers,omitempty"`
}
