// Package telemetry exposes Breakwater's Prometheus metrics: per route
// outcomes, attempts, target latency, retries, in-flight work and consumer
// state; per module call latency, fuel, breaches, quarantines and the
// version in use; breaker and flag state. It implements the pipeline's
// Observer and the engine's call hook, on its own registry.
package telemetry
