package policy

import (
	"context"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// DefaultFallback is the native fallback: the last-known-good value when one
// is fresh, else a stub when the route has a stub generator, else a dead letter.
type DefaultFallback struct {
	// HasStub says whether the route can generate a stub.
	HasStub bool
}

// ChooseFallback chooses the fallback of a message that will not be retried; it never fails.
func (p DefaultFallback) ChooseFallback(_ context.Context, in *abi.Input) (abi.FallbackDecision, error) {
	switch {
	case in.CacheAvailable:
		return abi.FallbackDecision{Action: abi.FallbackCache, Reason: "fresh last-known-good value"}, nil
	case p.HasStub:
		return abi.FallbackDecision{Action: abi.FallbackStub, Reason: "no fresh cached value"}, nil
	default:
		return abi.FallbackDecision{Action: abi.FallbackDeadLetter, Reason: "no fresh cached value and no stub"}, nil
	}
}
