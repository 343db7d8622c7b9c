package main

import (
	"errors"
	"math"
	"math/rand/v2"

	"github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/retry"
)

type settings struct {
	InitialMs   int64   `json:"initial_ms"`
	MaxMs       int64   `json:"max_ms"`
	Multiplier  float64 `json:"multiplier"`
	MaxAttempts uint32  `json:"max_attempts"`
}

func (s *settings) validate() error {
	switch {
	case s.InitialMs <= 0:
		return errors.New("initial_ms must be > 0")
	case s.MaxMs < s.InitialMs:
		return errors.New("max_ms must be >= initial_ms")
	case !(s.Multiplier >= 1) || math.IsInf(s.Multiplier, 0):
		return errors.New("multiplier must be a finite number >= 1")
	}
	return nil
}

var config = guest.Config[settings]{
	Defaults: settings{InitialMs: 100, MaxMs: 10_000, Multiplier: 2},
	Validate: (*settings).validate,
}

func init() {
	retry.Handle(decide)
}

func decide(in *guest.Input) guest.RetryDecision {
	s := config.MustLoad(in.Config)
	if s.MaxAttempts > 0 && in.Attempt >= s.MaxAttempts {
		return guest.RetryDecision{Retry: false, Reason: "max_attempts of the policy reached"}
	}
	if in.MaxAttempts > 0 && in.Attempt >= in.MaxAttempts {
		return guest.RetryDecision{Retry: false, Reason: "max_attempts of the route reached"}
	}
	ceiling := backoffCap(s, in.Attempt)
	return guest.RetryDecision{Retry: true, DelayMs: rand.Int64N(ceiling + 1), Reason: "exponential backoff"}
}

// backoffCap returns min(max_ms, initial_ms × multiplier^(attempt-1)),
// attempt being 1-based (0 is treated as 1).
func backoffCap(s *settings, attempt uint32) int64 {
	n := float64(max(attempt, 1) - 1)
	c := float64(s.InitialMs) * math.Pow(s.Multiplier, n)
	if c >= float64(s.MaxMs) || math.IsInf(c, 0) || math.IsNaN(c) {
		return s.MaxMs
	}
	return int64(c)
}

// main is required by package main; a reactor module never runs it.
func main() {}
