package attempt

import (
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// Observer hears what the message path does (attempts, both paths'
// outcomes), for metrics. Methods must be
// cheap and safe for concurrent use.
type Observer interface {
	// Attempt reports one call to a target; kind is "" on success.
	Attempt(route, target string, kind abi.ErrorKind, d time.Duration)
	// Retry reports a retry scheduled after attempt.
	Retry(route string, attempt uint32, delay time.Duration)
	// Outcome reports a terminal outcome (ok, cached, stub, dead; error on the sync path).
	Outcome(route, outcome string, attempts uint32, sinceFirstSeen time.Duration)
	// PolicyFailed reports a module that failed and was replaced by the native policy.
	PolicyFailed(route, kind, module string, err error)
	// Redelivered reports a message delivered again without a retry decision
	// (crash or ack timeout).
	Redelivered(route string)
	// InFlight reports messages (async) or requests (sync) starting (+1)
	// and ending (-1).
	InFlight(route string, delta int)
	// Coalesced reports a read-through miss served by another request's
	// call to the target.
	Coalesced(route string)
	// Ejected reports a target leaving (true) or coming back to (false)
	// a route's balancing.
	Ejected(route, target string, out bool)
	// ReplyRefused reports a Bw-Reply-To subject refused (invalid, too
	// long, or outside the route's reply namespaces).
	ReplyRefused(route string)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) Attempt(string, string, abi.ErrorKind, time.Duration) {}
func (NopObserver) Retry(string, uint32, time.Duration)                  {}
func (NopObserver) Outcome(string, string, uint32, time.Duration)        {}
func (NopObserver) PolicyFailed(string, string, string, error)           {}
func (NopObserver) Redelivered(string)                                   {}
func (NopObserver) InFlight(string, int)                                 {}
func (NopObserver) ReplyRefused(string)                                  {}
func (NopObserver) Coalesced(string)                                     {}
func (NopObserver) Ejected(string, string, bool)                         {}
