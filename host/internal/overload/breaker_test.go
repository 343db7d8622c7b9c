package overload

import (
	"errors"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func call(t *testing.T, b *Breaker, success bool) error {
	t.Helper()
	done, err := b.Allow()
	if err != nil {
		return err
	}
	done(success)
	return nil
}

func TestBreakerTransitions(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	var mu sync.Mutex
	var changes []string
	b := NewBreaker("pay", BreakerConfig{FailureThreshold: 3, ResetTimeout: 10 * time.Second, HalfOpenProbes: 1},
		WithClock(clock), WithStateChange(func(name string, from, to State) {
			mu.Lock()
			changes = append(changes, from.String()+"->"+to.String())
			mu.Unlock()
		}))
	steps := []struct {
		name    string
		advance time.Duration
		success bool
		wantErr bool
		want    State
	}{
		{"failure 1", 0, false, false, Closed},
		{"success resets the count", 0, true, false, Closed},
		{"failure 1 again", 0, false, false, Closed},
		{"failure 2", 0, false, false, Closed},
		{"failure 3 opens", 0, false, false, Open},
		{"open fails fast", time.Second, true, true, Open},
		{"after reset: probe fails, open again", 10 * time.Second, false, false, Open},
		{"still open", time.Second, true, true, Open},
		{"after reset: probe succeeds, closed", 10 * time.Second, true, false, Closed},
		{"closed passes", 0, true, false, Closed},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		err := call(t, b, s.success)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: err %v, want error %v", s.name, err, s.wantErr)
		}
		if err != nil && !errors.Is(err, ErrOpen) {
			t.Fatalf("%s: error %v is not ErrOpen", s.name, err)
		}
		if got := b.State(); got != s.want {
			t.Fatalf("%s: state %v, want %v", s.name, got, s.want)
		}
	}
	want := []string{"closed->open", "open->half_open", "half_open->open", "open->half_open", "half_open->closed"}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != len(want) {
		t.Fatalf("transitions %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("transitions %v, want %v", changes, want)
		}
	}
}

func TestBreakerFailureRate(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	b := NewBreaker("rate", BreakerConfig{FailureThreshold: 1000, FailureRate: 0.5, MinRequests: 10, Window: 10 * time.Second}, WithClock(clock))
	// Alternate success and failure: never 1000 consecutive failures, but 50%.
	for i := 0; i < 9; i++ {
		if err := call(t, b, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if b.State() != Closed {
		t.Fatal("opened before min requests")
	}
	_ = call(t, b, false) // 10th call: 5 failures of 10
	if b.State() != Open {
		t.Fatalf("state %v after a 50%% failure rate, want open", b.State())
	}
}

func TestBreakerFailuresOutsideWindowForgotten(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	b := NewBreaker("w", BreakerConfig{FailureThreshold: 1000, FailureRate: 0.5, MinRequests: 4, Window: 10 * time.Second}, WithClock(clock))
	for range 3 {
		_ = call(t, b, false)
	}
	clock.Advance(20 * time.Second)
	for range 3 {
		_ = call(t, b, true)
	}
	_ = call(t, b, false) // 1 of 4 in the window
	if b.State() != Closed {
		t.Fatalf("old failures counted: %v", b.State())
	}
}

func TestBreakerHalfOpenProbesBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	b := NewBreaker("p", BreakerConfig{FailureThreshold: 1, ResetTimeout: time.Second, HalfOpenProbes: 2}, WithClock(clock))
	_ = call(t, b, false)
	clock.Advance(time.Second)
	var allowed []func(bool)
	refused := 0
	for range 10 {
		done, err := b.Allow()
		if err != nil {
			refused++
			continue
		}
		allowed = append(allowed, done)
	}
	if len(allowed) != 2 || refused != 8 {
		t.Fatalf("%d probes allowed, %d refused; want 2 and 8", len(allowed), refused)
	}
	allowed[0](true)
	if b.State() != HalfOpen {
		t.Fatalf("closed after 1 of 2 probe successes")
	}
	allowed[1](true)
	allowed[1](true) // done is idempotent
	if b.State() != Closed {
		t.Fatalf("state %v after 2 probe successes, want closed", b.State())
	}
}
