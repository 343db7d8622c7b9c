//go:build wasip1

// Command extism-plugin is the Extism peer of modules/retry-status-aware.wasm:
// the same retry logic (policies/retry-status-aware/main.go), written
// against the Extism Go PDK instead of Breakwater's guest SDK.
//
// Export "decide": its input is the Breakwater ABI v1 encoding of
// abi.Input (the same bytes the Breakwater engine hands bw_retry), its
// output the ABI v1 encoding of abi.RetryDecision. Using the ABI bytes on
// both sides keeps the comparison about the runtimes: both hosts pay the
// same encoding, both guests the same decoding.
//
// Build with plain Go (no TinyGo): ./build.sh
package main

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"

	"github.com/extism/go-pdk"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
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

// configs caches decoded configs by their raw JSON, as the guest SDK does.
var configs = map[string]*settings{}

func loadConfig(raw []byte) (*settings, error) {
	if s, ok := configs[string(raw)]; ok {
		return s, nil
	}
	s := &settings{DelayMs: 200, Multiplier: 1}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, s); err != nil {
			return nil, err
		}
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	if len(configs) >= 64 {
		configs = map[string]*settings{}
	}
	configs[string(raw)] = s
	return s, nil
}

type verdict struct {
	retry     bool
	throttled bool
	reason    string
}

func classify(e *abi.AttemptError) verdict {
	switch e.Kind {
	case abi.ErrorStatus:
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
	case abi.ErrorTimeout, abi.ErrorConnect:
		return verdict{true, false, string(e.Kind)}
	case abi.ErrorBreakerOpen, abi.ErrorBulkheadFull, abi.ErrorRateLimited:
		return verdict{true, true, string(e.Kind)}
	case abi.ErrorBadInput, abi.ErrorSwitchedOff, abi.ErrorUnknownRoute:
		return verdict{false, false, string(e.Kind) + " is not retryable"}
	case abi.ErrorNone:
		return verdict{false, false, "no error"}
	default:
		return verdict{true, false, string(e.Kind)}
	}
}

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

func decideInput(in *abi.Input, s *settings) abi.RetryDecision {
	v := classify(&in.Error)
	if !v.retry {
		return abi.RetryDecision{Retry: false, Reason: v.reason}
	}
	if s.MaxAttempts > 0 && in.Attempt >= s.MaxAttempts {
		return abi.RetryDecision{Retry: false, Reason: "max_attempts of the policy reached"}
	}
	if in.MaxAttempts > 0 && in.Attempt >= in.MaxAttempts {
		return abi.RetryDecision{Retry: false, Reason: "max_attempts of the route reached"}
	}
	return abi.RetryDecision{Retry: true, DelayMs: delay(s, in.Attempt, v.throttled), Reason: v.reason}
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

// Reused across calls, as the guest SDK reuses its buffers.
var (
	input abi.Input
	out   []byte
)

//go:wasmexport decide
func decide() int32 {
	if err := input.UnmarshalABINoCopy(pdk.Input()); err != nil {
		pdk.SetError(err)
		return 1
	}
	s, err := loadConfig(input.Config)
	if err != nil {
		pdk.SetError(err)
		return 1
	}
	d := decideInput(&input, s)
	out = d.MarshalABI(out[:0])
	pdk.Output(out)
	return 0
}

// main is required by package main; a reactor module never runs it.
func main() {}
