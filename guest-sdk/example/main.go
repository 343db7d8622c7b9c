package main

import (
	"github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/retry"
)

func init() {
	retry.Handle(decide)
}

// decide retries up to three times, 100 ms more each time, unless the target
// rejected the message itself (a 4xx status other than 408 and 429).
func decide(in *guest.Input) guest.RetryDecision {
	if in.Error.Kind == guest.ErrorStatus && in.Error.Status >= 400 && in.Error.Status < 500 &&
		in.Error.Status != 408 && in.Error.Status != 429 {
		return guest.RetryDecision{Retry: false, Reason: "client error"}
	}
	if in.Attempt >= 3 {
		guest.Log(guest.LevelInfo, "giving up", "route", in.Route, "attempt", in.Attempt)
		return guest.RetryDecision{Retry: false, Reason: "three attempts"}
	}
	return guest.RetryDecision{Retry: true, DelayMs: 100 * int64(in.Attempt)}
}

// main is required by package main; a reactor module never runs it.
func main() {}
