// Package deadletter owns the dead-letter record: what is parked on
// bw.dlq.<route> when a message will not be retried and no fallback served it
// (the original message plus the full error history), and the operator
// tools over it: list and replay.
package deadletter
