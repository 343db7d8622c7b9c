package policy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

func TestBackoffRetry(t *testing.T) {
	p := &BackoffRetry{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.5}
	tests := []struct {
		name      string
		attempt   uint32
		err       abi.AttemptError
		wantRetry bool
		minDelay  time.Duration
		maxDelay  time.Duration
	}{
		{"timeout first", 1, abi.AttemptError{Kind: abi.ErrorTimeout}, true, 50 * time.Millisecond, 150 * time.Millisecond},
		{"503 third", 3, abi.AttemptError{Kind: abi.ErrorStatus, Status: 503}, true, 200 * time.Millisecond, 600 * time.Millisecond},
		{"capped", 4, abi.AttemptError{Kind: abi.ErrorConnect}, true, 400 * time.Millisecond, 1200 * time.Millisecond},
		{"429", 1, abi.AttemptError{Kind: abi.ErrorStatus, Status: 429}, true, 50 * time.Millisecond, 150 * time.Millisecond},
		{"404 never", 1, abi.AttemptError{Kind: abi.ErrorStatus, Status: 404}, false, 0, 0},
		{"bad input never", 1, abi.AttemptError{Kind: abi.ErrorBadInput}, false, 0, 0},
		{"switched off never", 1, abi.AttemptError{Kind: abi.ErrorSwitchedOff}, false, 0, 0},
		{"exhausted", 5, abi.AttemptError{Kind: abi.ErrorTimeout}, false, 0, 0},
		{"classified retryable", 1, abi.AttemptError{Kind: abi.ErrorClassifiedRetryable, Status: 200}, true, 50 * time.Millisecond, 150 * time.Millisecond},
		{"classified retryable 409", 2, abi.AttemptError{Kind: abi.ErrorClassifiedRetryable, Status: 409}, true, 100 * time.Millisecond, 300 * time.Millisecond},
		{"classified permanent never", 1, abi.AttemptError{Kind: abi.ErrorClassifiedPermanent, Status: 200}, false, 0, 0},
		{"classified permanent 503 never", 1, abi.AttemptError{Kind: abi.ErrorClassifiedPermanent, Status: 503}, false, 0, 0},
		{"result too large never", 1, abi.AttemptError{Kind: abi.ErrorResultTooLarge}, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i < 20; i++ { // jitter: every draw within bounds
				d, err := p.DecideRetry(context.Background(), &abi.Input{Attempt: tt.attempt, MaxAttempts: 5, Error: tt.err})
				if err != nil || d.Retry != tt.wantRetry || d.Reason == "" {
					t.Fatalf("decision %+v, %v; want retry=%v with a reason", d, err, tt.wantRetry)
				}
				if got := time.Duration(d.DelayMs) * time.Millisecond; tt.wantRetry && (got < tt.minDelay || got > tt.maxDelay) {
					t.Fatalf("delay %v outside [%v, %v]", got, tt.minDelay, tt.maxDelay)
				}
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err       abi.AttemptError
		want      bool
		reasonHas string
	}{
		{abi.AttemptError{Kind: abi.ErrorTimeout}, true, ""},
		{abi.AttemptError{Kind: abi.ErrorStatus, Status: 503}, true, ""},
		{abi.AttemptError{Kind: abi.ErrorStatus, Status: 408}, true, ""},
		{abi.AttemptError{Kind: abi.ErrorStatus, Status: 404}, false, "status 404"},
		{abi.AttemptError{Kind: abi.ErrorClassifiedRetryable}, true, ""},
		{abi.AttemptError{Kind: abi.ErrorClassifiedRetryable, Status: 200, Message: "body error"}, true, ""},
		{abi.AttemptError{Kind: abi.ErrorClassifiedPermanent}, false, "permanent"},
		// The verdict wins over the status: a 503 judged permanent is not retried.
		{abi.AttemptError{Kind: abi.ErrorClassifiedPermanent, Status: 503}, false, "permanent"},
		{abi.AttemptError{Kind: abi.ErrorBadInput}, false, "bad_input"},
	}
	for _, tt := range tests {
		got, why := Retryable(tt.err)
		if got != tt.want || !strings.Contains(why, tt.reasonHas) || (!got && why == "") {
			t.Errorf("Retryable(%+v) = %v, %q; want %v with a reason containing %q", tt.err, got, why, tt.want, tt.reasonHas)
		}
	}
}

func TestDefaultFallback(t *testing.T) {
	tests := []struct {
		cached, stub bool
		want         abi.FallbackAction
	}{
		{true, true, abi.FallbackCache},
		{true, false, abi.FallbackCache},
		{false, true, abi.FallbackStub},
		{false, false, abi.FallbackDeadLetter},
	}
	for _, tt := range tests {
		d, err := DefaultFallback{HasStub: tt.stub}.ChooseFallback(context.Background(), &abi.Input{CacheAvailable: tt.cached})
		if err != nil || d.Action != tt.want {
			t.Errorf("cached=%v stub=%v: got %+v, %v; want %s", tt.cached, tt.stub, d, err, tt.want)
		}
	}
}
