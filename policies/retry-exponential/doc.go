// Command retry-exponential is a retry policy module: exponential backoff
// with full jitter.
//
// The delay before attempt n+1 (after attempt n failed) is drawn uniformly
// from [0, min(max_ms, initial_ms × multiplier^(n-1))] ("full jitter", which
// spreads the retries of many clients instead of synchronizing them). The
// policy retries every error; pair it with a route whose max attempts bound
// the retries, or set max_attempts.
//
// Config (the route's JSON config for the module):
//
//	{
//	  "initial_ms": 100,    // cap of the first delay (default 100, > 0)
//	  "max_ms": 10000,      // cap of every delay (default 10000, >= initial_ms)
//	  "multiplier": 2,      // growth of the cap per attempt (default 2, >= 1)
//	  "max_attempts": 5     // optional: give up once this many attempts failed (0: no limit of its own)
//	}
//
// The policy also gives up when the input's max_attempts is reached. Random
// numbers come from math/rand/v2, seeded by WASI random_get.
package main
