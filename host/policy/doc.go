// Package policy owns the decision interfaces of the pipeline (retry, fallback,
// stub) and the native Go implementations that serve when a route names no
// module, or when a module breaches its limits.
//
// The interfaces take the ABI records of guest-sdk/abi directly, so a native
// policy and a WebAssembly one are interchangeable and comparable in benchmarks.
package policy
