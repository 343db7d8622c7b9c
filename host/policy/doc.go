// Package policy owns the native policies: the Go implementations that
// decide when a route names no module, or when its module fails (backoff
// retry and what is retryable, the cache → stub → dead-letter fallback,
// the static stub). host/internal/decision calls them through the same
// path as a module.
//
// They take and return the ABI records of guest-sdk/abi, so a native
// policy and a WebAssembly one are interchangeable and comparable in
// benchmarks.
package policy
