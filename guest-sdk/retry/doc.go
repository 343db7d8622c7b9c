// Package retry makes a module a retry policy: importing it adds the
// bw_retry export (ABI v1) to the module, and Handle registers the function
// it runs.
//
// The host calls bw_retry after each failed attempt of a message on a route
// that names the module as its retry policy. The decision says whether to try
// again and after what delay; the host still enforces the route's own limits
// (max attempts, deadline), whatever the decision.
//
//	package main
//
//	import (
//		"github.com/breakwater-dev/breakwater/guest-sdk"
//		"github.com/breakwater-dev/breakwater/guest-sdk/retry"
//	)
//
//	func init() {
//		retry.Handle(func(in *guest.Input) guest.RetryDecision {
//			return guest.RetryDecision{Retry: in.Attempt < 3, DelayMs: 100}
//		})
//	}
//
//	func main() {}
package retry
