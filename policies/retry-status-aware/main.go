package main

import (
	"errors"
	"math"
	"strconv"

	"github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/retry"
)

type settings struct {
	DelayMs          int64   `json:"delay_ms"`
	Multiplier       float64 `json:"multiplier"`
	MaxDelayMs       int64   `json:"max_delay_ms"`
	ThrottledDelayMs int64   `json:"throttled_delay_ms"`
	MaxAttempts      uint32  `json:"max_attempts"`
}

func (s *settings) validate() error {
	switch {
	case s.DelayMs < 0 || s.MaxDelayMs < 0 || s.ThrottledDelayMs < 0:
		return errors.New("delays must be >= 0")
	case !(s.Multiplier >= 1) || math.IsInf(s.Multiplier, 0):
		return errors.New("multiplier must be a finite number >= 1")
	}
	return nil
}

var config = guest.Config[settings]{
	Defaults: settings{DelayMs: 200, Multiplier: 1},
	Validate: (*settings).validate,
}

func init() {
	retry.Handle(decide)
}

// verdict says whether an error is worth retrying, and whether it is a
// throttling signal (the target or the host asked us to slow down).
type verdict struct {
	retry     bool
	throttled bool
	reason    string
}

func classify(e *guest.AttemptError) verdict {
	switch e.Kind {
	case guest.ErrorStatus:
		switch s := e.Status; {
		case s == 429:
			return verdict{true, true, "status 429"}
		case s == 408:
			return verdict{true, false, "status 408"}
		case s >= 500 && s <= 599:
			return verdict{true, false, statusReason(s, "")}
		default:
			return verdict{false, false, statusReason(s, " is not retryable")}
		}
	case guest.ErrorTimeout, guest.ErrorConnect:
		return verdict{true, false, string(e.Kind)}
	case guest.ErrorBreakerOpen, guest.ErrorBulkheadFull, guest.ErrorRateLimited:
		return verdict{true, true, string(e.Kind)}
	case guest.ErrorClassifiedRetryable:
		// The route's classify module judged the answer a transient failure.
		return verdict{true, e.Status == 429, string(e.Kind)}
	case guest.ErrorClassifiedPermanent:
		return verdict{false, false, string(e.Kind) + " is not retryable"}
	case guest.ErrorBadInput, guest.ErrorSwitchedOff, guest.ErrorUnknownRoute:
		return verdict{false, false, string(e.Kind) + " is not retryable"}
	case guest.ErrorNone:
		return verdict{false, false, "no error"}
	default: // internal, and kinds newer than this module
		return verdict{true, false, string(e.Kind)}
	}
}

// reasons caches the reasons naming a status: formatting one per call would
// cost an allocation, the dearest thing in a Go guest.
var reasons = map[int32]string{}

func statusReason(status int32, suffix string) string {
	key := status
	if suffix != "" {
		key = -status - 1
	}
	if r, ok := reasons[key]; ok {
		return r
	}
	r := "status " + strconv.Itoa(int(status)) + suffix
	if len(reasons) < 1024 {
		reasons[key] = r
	}
	return r
}

func decide(in *guest.Input) guest.RetryDecision {
	s := config.MustLoad(in.Config)
	v := classify(&in.Error)
	if !v.retry {
		return guest.RetryDecision{Retry: false, Reason: v.reason}
	}
	if s.MaxAttempts > 0 && in.Attempt >= s.MaxAttempts {
		return guest.RetryDecision{Retry: false, Reason: "max_attempts of the policy reached"}
	}
	if in.MaxAttempts > 0 && in.Attempt >= in.MaxAttempts {
		return guest.RetryDecision{Retry: false, Reason: "max_attempts of the route reached"}
	}
	return guest.RetryDecision{Retry: true, DelayMs: delay(s, in.Attempt, v.throttled), Reason: v.reason}
}

func delay(s *settings, attempt uint32, throttled bool) int64 {
	base := s.DelayMs
	if throttled && s.ThrottledDelayMs > 0 {
		base = s.ThrottledDelayMs
	}
	d := float64(base) * math.Pow(s.Multiplier, float64(max(attempt, 1)-1))
	if s.MaxDelayMs > 0 && d > float64(s.MaxDelayMs) {
		return s.MaxDelayMs
	}
	if d >= math.MaxInt64 || math.IsNaN(d) {
		return math.MaxInt64
	}
	return int64(d)
}

// main is required by package main; a reactor module never runs it.
func main() {}
