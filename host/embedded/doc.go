// Package embedded owns the in-process nats-server with JetStream that
// `runtime serve` starts when no external NATS URL is configured, so a fresh
// machine needs nothing installed. Tests use it too, on a random loopback port.
package embedded
