// Package target owns the outbound calls of a route: an HTTP endpoint or a
// NATS service (request-reply). Every call runs under the caller's context
// deadline, and every failure is classified into the ABI's error kinds
// (timeout, status, connect, ...) as a *Error, so policies can branch on it.
package target
