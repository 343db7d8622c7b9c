// Package subject validates NATS subjects, subject patterns and tokens that
// the runtime builds from untrusted input (producer headers, payload fields,
// subjects producers published on) before the runtime publishes to them or
// uses them as KV keys or consumer filters.
//
// A subject longer than the server's control-line limit (4 KiB by default)
// makes the server close the publishing connection, so every subject built
// from input is bounded here, well below that limit.
package subject
