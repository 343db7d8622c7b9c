package classify_test

import (
	"fmt"

	"github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/classify"
)

// A policy is registered from init in the module's package main; Call runs
// it natively, which is how its logic is unit-tested without a wasm runtime.
func Example() {
	classify.Handle(func(in *guest.Input) guest.ClassifyDecision {
		switch s := in.ResponseStatus; {
		case s == 409:
			return guest.ClassifyDecision{Verdict: guest.VerdictSuccess, Reason: "already created"}
		case s >= 500:
			return guest.ClassifyDecision{Verdict: guest.VerdictRetryable, Reason: "server error"}
		case s >= 400:
			return guest.ClassifyDecision{Verdict: guest.VerdictPermanent, Reason: "client error"}
		}
		return guest.ClassifyDecision{Verdict: guest.VerdictSuccess}
	})

	for _, status := range []int32{200, 409, 503, 404} {
		d := classify.Call(&guest.Input{Route: "orders", Target: "orders-api", ResponseStatus: status})
		fmt.Printf("%d: %s %q\n", status, d.Verdict, d.Reason)
	}
	// Output:
	// 200: success ""
	// 409: success "already created"
	// 503: retryable "server error"
	// 404: permanent "client error"
}
