// Package pipeline owns the processing of work: per-route durable consumers
// on bw.in.<route>, the call to the target, the retry decision (a durable
// NakWithDelay), the fallback (last-known-good, stub, dead letter) and the
// publication of exactly one terminal outcome per message on bw.out.<route>.
//
// Delivery to the target is at-least-once: a crash after a call and before
// its acknowledgement calls the target again on redelivery (the HTTP target
// sends an Idempotency-Key header so the target can de-duplicate). Terminal
// outcomes are exactly-once within the streams' duplicate window: every
// outcome is first published on bw.out.<route> with a Nats-Msg-Id derived
// from the input's stream sequence (the "claim"); a redelivered message whose
// claim is reported as a duplicate adopts the outcome already claimed, and
// re-publishes its dead letter (de-duplicated too) if that outcome was dead.
package pipeline
