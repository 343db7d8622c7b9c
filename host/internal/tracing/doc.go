// Package tracing sets up OpenTelemetry for the runtime and carries W3C
// trace context (traceparent, tracestate) in NATS and HTTP headers.
//
// Tracing is off unless tracing.endpoint is set: the tracer provider is
// then a no-op, but an incoming traceparent still travels on to the target
// and the outcome, so a producer's trace is never broken.
package tracing
