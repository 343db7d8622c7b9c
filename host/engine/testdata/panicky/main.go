// Command panicky is a test guest of host/engine: a Go retry policy that
// panics when its config lacks a field, built by the tests without -s so
// that the module keeps its name section (as an author's build does).
package main

import (
	"github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/retry"
)

func init() { retry.Handle(decide) }

//go:noinline
func decide(in *guest.Input) guest.RetryDecision {
	if len(in.Config) == 0 {
		panic("inventory policy: config field \"sku_field\" is required")
	}
	return guest.RetryDecision{Retry: true, Reason: "configured"}
}

// main is required by package main; a reactor module never runs it.
func main() {}
