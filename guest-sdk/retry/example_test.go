package retry_test

import (
	"fmt"

	"github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/retry"
)

// A policy is registered from init in the module's package main; Call runs
// it natively, which is how its logic is unit-tested without a wasm runtime.
func Example() {
	retry.Handle(func(in *guest.Input) guest.RetryDecision {
		if in.Error.Kind == guest.ErrorStatus && in.Error.Status < 500 {
			return guest.RetryDecision{Retry: false, Reason: "client error"}
		}
		return guest.RetryDecision{Retry: true, DelayMs: 100 * int64(in.Attempt)}
	})

	for _, status := range []int32{503, 404} {
		d := retry.Call(&guest.Input{
			Route:   "orders",
			Attempt: 2,
			Error:   guest.AttemptError{Kind: guest.ErrorStatus, Status: status},
		})
		fmt.Printf("%d: retry=%v delay=%dms reason=%q\n", status, d.Retry, d.DelayMs, d.Reason)
	}
	// Output:
	// 503: retry=true delay=200ms reason=""
	// 404: retry=false delay=0ms reason="client error"
}
