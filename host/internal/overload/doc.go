// Package overload protects targets from overload and callers from slow
// targets: a circuit breaker, a bulkhead, token-bucket rate limits and
// hedged requests, each in its own small file, composed per target by
// Guard. Refusals are *target.Error values with the ABI error kinds
// breaker_open, bulkhead_full and rate_limited, so the pipeline treats them
// like any other failed attempt (retry policy, then fallback).
package overload
