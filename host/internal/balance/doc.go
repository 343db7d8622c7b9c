// Package balance owns the choice among a route's targets: the order in
// which one attempt tries them (failover, round robin, least pending) and
// outlier ejection, after Envoy's: a target that keeps failing is left out
// of the choice for a growing time, with at most a share of the targets
// out at once, and never the last one.
//
// It knows targets by index only; host/internal/attempt owns what they are.
package balance
