package policy

import (
	"context"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// Retry decides whether a failed attempt is tried again, and when.
type Retry interface {
	DecideRetry(ctx context.Context, in *abi.Input) (abi.RetryDecision, error)
}

// Fallback chooses what happens once a message will not be retried.
type Fallback interface {
	ChooseFallback(ctx context.Context, in *abi.Input) (abi.FallbackDecision, error)
}

// StubGenerator makes a stand-in answer for a failed call.
type StubGenerator interface {
	GenerateStub(ctx context.Context, in *abi.Input) (abi.Stub, error)
}
