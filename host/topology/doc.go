// Package topology owns Breakwater's layout on JetStream: subject and stream
// names, the KV buckets, the per-route durable consumers and the consumer for
// messages on subjects no route serves. Everything is created idempotently at
// start, so any number of runtime instances can start in any order.
package topology
