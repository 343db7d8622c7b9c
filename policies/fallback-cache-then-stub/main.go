package main

import (
	"github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/fallback"
)

type settings struct {
	HasStub bool `json:"has_stub"`
}

var config guest.Config[settings]

func init() {
	fallback.Handle(decide)
}

func decide(in *guest.Input) guest.FallbackDecision {
	s := config.MustLoad(in.Config)
	switch {
	case in.CacheAvailable:
		return guest.FallbackDecision{Action: guest.FallbackCache, Reason: "a cached value is available"}
	case s.HasStub:
		return guest.FallbackDecision{Action: guest.FallbackStub, Reason: "no cached value; the route has a stub"}
	default:
		return guest.FallbackDecision{Action: guest.FallbackDeadLetter, Reason: "no cached value and no stub"}
	}
}

// main is required by package main; a reactor module never runs it.
func main() {}
