// Command retry-status-aware is a retry policy module that retries only the
// failures worth retrying.
//
// Retried: a 5xx status, 408 Request Timeout, 429 Too Many Requests; a
// timeout; a connection failure; a call not made because the target's
// breaker was open, its bulkhead full or its rate limit reached; an answer
// the route's classify module judged a retryable failure
// (classified_retryable); an internal error or an error kind this module
// does not know.
//
// Never retried: any other status (4xx and the rest: the target rejected the
// message itself); an answer judged a permanent failure
// (classified_permanent); bad_input, switched_off and unknown_route
// (retrying cannot help); a call with no error.
//
// Config:
//
//	{
//	  "delay_ms": 200,          // delay before the next attempt (default 200, >= 0)
//	  "multiplier": 1,          // growth of the delay per attempt (default 1: constant, >= 1)
//	  "max_delay_ms": 0,        // cap of the delay (0: no cap)
//	  "throttled_delay_ms": 0,  // delay after 429, rate_limited, bulkhead_full or breaker_open (0: as delay_ms)
//	  "max_attempts": 0         // give up once this many attempts failed (0: the route's limit only)
//	}
package main
