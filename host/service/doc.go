// Package service assembles a running Breakwater instance from its
// configuration: the NATS connection (an embedded server with JetStream, or
// an external cluster), the streams and buckets, the routes, the pipeline and
// the HTTP endpoints for health checks. It owns start-up order and graceful
// shutdown; the pieces themselves live in their own packages.
package service
