// Package attempt owns one attempt at a message, the same on the async and
// the sync path and with no NATS in it: the cache key, a fresh read-through
// hit, the kill switch, the guards and the route's targets (failover or
// balancing), the classify decision, the retry decision and, once the
// message will not be retried, the fallback (cached value, stub, or dead
// letter).
//
// The async path (host/internal/pipeline) adds JetStream to it: history,
// publish-once, ack. The sync path (host/internal/syncpath) loops over it
// within the caller's deadline. Both build outcome headers, error records
// and log lines here.
package attempt
