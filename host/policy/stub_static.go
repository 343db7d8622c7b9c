package policy

import (
	"context"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// StaticStub is the native stub generator: a fixed payload and headers from
// the route configuration.
type StaticStub struct {
	Payload []byte
	Headers map[string]string
}

// GenerateStub returns the static stub; it never fails.
func (s *StaticStub) GenerateStub(context.Context, *abi.Input) (abi.Stub, error) {
	return abi.Stub{Payload: s.Payload, Headers: s.Headers}, nil
}
