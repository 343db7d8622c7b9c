package main

import (
	sdk "github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/fallback"
)

type settings struct {
	HasStub bool `json:"has_stub"`
}

var config sdk.Config[settings]

func init() {
	fallback.Handle(decide)
}

func decide(in *sdk.Input) sdk.FallbackDecision {
	s := config.MustLoad(in.Config)
	switch {
	case in.CacheAvailable:
		return sdk.FallbackDecision{Action: sdk.FallbackCache, Reason: "a cached value is available"}
	case s.HasStub:
		return sdk.FallbackDecision{Action: sdk.FallbackStub, Reason: "no cached value; the route has a stub"}
	default:
		return sdk.FallbackDecision{Action: sdk.FallbackDeadLetter, Reason: "no cached value and no stub"}
	}
}

// main is required by package main; a reactor module never runs it.
func main() {}
