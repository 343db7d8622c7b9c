// Package peers holds the systems Breakwater is benchmarked against: what a
// team would otherwise write or use for the same job.
//
//   - handworker.go: a hand-written nats.go JetStream worker doing exactly
//     Breakwater's success-path JetStream work.
//   - watermill.go: Watermill's router over watermill-nats' JetStream
//     Pub/Sub, with its Retry and PoisonQueue middleware.
//   - failsafe.go: failsafe-go's RetryPolicy as a per-decision function,
//     and Timeout+Retry+CircuitBreaker around a NATS request.
//   - extism.go: the Extism Go SDK calling extism-plugin/retry.wasm, the
//     same retry logic as modules/retry-status-aware.wasm.
//   - decide.go: the other per-decision contenders (native policy, plain
//     wazero on the minimal WAT module, Breakwater's engine) behind one
//     function type, Decider.
package peers
