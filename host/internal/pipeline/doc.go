// Package pipeline owns the async path's JetStream work: per-route durable
// consumers on bw.in.<route>, each message's attempt history in
// bw_attempts, a retry as a durable NakWithDelay, and the publication of
// exactly one terminal outcome per message on bw.out.<route> (and
// bw.dlq.<route>). The attempt itself is host/internal/attempt's; the
// route runners it starts also subscribe the route's sync path
// (host/internal/syncpath).
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
