// Package syncpath owns the sync path: bw.call.<route> requests answered
// within the caller's deadline. Each request loops over the attempt step
// (host/internal/attempt) while a retry fits in the time left, then
// replies with the answer, a cached value, a stub, or an error reply with
// an HTTP-like status. Nothing of it is durable: a request that gets no
// answer is the caller's to retry.
package syncpath
