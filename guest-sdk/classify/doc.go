// Package classify makes a module a classify policy: importing it adds the
// bw_classify export (ABI v1) to the module, and Handle registers the
// function it runs.
//
// The host calls bw_classify with the target's answer to an attempt
// (Input.ResponseStatus, ResponseHeaders and ResponseBody; Input.Target
// names the target) on a route that names the module as its classifier. The
// decision's verdict says whether the answer is a success, a failure another
// attempt may cure (retryable) or one it cannot (permanent): a 200 whose
// body says {"error": ...} can be a failure, a 409 on an idempotent create
// a success. A failure goes on to the route's retry policy as an attempt
// error of kind classified_retryable or classified_permanent.
//
//	package main
//
//	import (
//		"github.com/breakwater-dev/breakwater/guest-sdk"
//		"github.com/breakwater-dev/breakwater/guest-sdk/classify"
//	)
//
//	func init() {
//		classify.Handle(func(in *guest.Input) guest.ClassifyDecision {
//			switch s := in.ResponseStatus; {
//			case s == 409:
//				return guest.ClassifyDecision{Verdict: guest.VerdictSuccess, Reason: "already created"}
//			case s >= 500:
//				return guest.ClassifyDecision{Verdict: guest.VerdictRetryable}
//			}
//			return guest.ClassifyDecision{Verdict: guest.VerdictSuccess}
//		})
//	}
//
//	func main() {}
package classify
