// Package headers names the NATS headers of Breakwater's message protocol:
// what producers may set on bw.in/bw.call messages, and what Breakwater sets
// on outcomes, replies and dead letters.
package headers
