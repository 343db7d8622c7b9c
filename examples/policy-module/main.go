// Command policy-module is the worked example of docs/modules.md: a retry
// policy for an inventory service. It retries what another attempt may
// cure (timeouts, connection failures, 429, 5xx), never a request the
// service refused (other 4xx), and waits longer after each attempt, within
// limits taken from the route's config. It honours a target's Retry-After.
//
// Build it (one line, in this directory):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o inventory-retry.wasm .
package main

import (
	"github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/retry"
)

// settings is the route's config for this module (routes[].modules.retry.config).
type settings struct {
	InitialMs   int64  `json:"initial_ms"`
	MaxMs       int64  `json:"max_ms"`
	MaxAttempts uint32 `json:"max_attempts"`
}

var config = guest.Config[settings]{Defaults: settings{InitialMs: 100, MaxMs: 5_000, MaxAttempts: 5}}

func init() { retry.Handle(decide) }

func decide(in *guest.Input) guest.RetryDecision {
	s, err := config.Load(in.Config)
	if err != nil {
		// A config the module cannot read is the operator's mistake: say
		// so, and let the runtime's native policy decide (a panic is a
		// breach, reported with this message).
		panic("inventory-retry: bad config: " + err.Error())
	}
	switch e := in.Error; {
	case e.Kind == guest.ErrorStatus && e.Status >= 400 && e.Status < 500 && e.Status != 408 && e.Status != 429:
		return guest.RetryDecision{Retry: false, Reason: "the service refused the request"}
	case in.Attempt >= s.MaxAttempts:
		guest.Log(guest.LevelInfo, "giving up", "route", in.Route, "message_id", in.MessageID, "attempt", in.Attempt)
		return guest.RetryDecision{Retry: false, Reason: "attempts exhausted"}
	case in.RetryAfterMs > 0:
		return guest.RetryDecision{Retry: true, DelayMs: min(in.RetryAfterMs, s.MaxMs), Reason: "retry-after"}
	}
	delay := s.InitialMs << (in.Attempt - 1) // 1, 2, 4, 8... times the first wait
	if delay <= 0 || delay > s.MaxMs {
		delay = s.MaxMs
	}
	return guest.RetryDecision{Retry: true, DelayMs: delay, Reason: "backoff"}
}

// main is required by package main; a reactor module never runs it.
func main() {}
