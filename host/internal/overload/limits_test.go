package overload

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestBulkhead(t *testing.T) {
	b := NewBulkhead("t", 2, 0)
	r1, err1 := b.Acquire(context.Background())
	r2, err2 := b.Acquire(context.Background())
	if err1 != nil || err2 != nil || b.InFlight() != 2 {
		t.Fatalf("first two: %v %v", err1, err2)
	}
	if _, err := b.Acquire(context.Background()); !errors.Is(err, ErrFull) {
		t.Fatalf("third: %v, want ErrFull", err)
	}
	r1()
	r1() // idempotent
	if b.InFlight() != 1 {
		t.Fatalf("in flight %d after one release", b.InFlight())
	}
	r3, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r2()
	r3()
}

func TestBulkheadWaitsForASlot(t *testing.T) {
	b := NewBulkhead("t", 1, time.Minute)
	release, _ := b.Acquire(context.Background())
	got := make(chan error, 1)
	go func() {
		r, err := b.Acquire(context.Background())
		if r != nil {
			r()
		}
		got <- err
	}()
	release()
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	// A context that ends first refuses.
	release, _ = b.Acquire(context.Background())
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var fe *FullError
	if _, err := b.Acquire(ctx); !errors.As(err, &fe) || fe.Context == nil {
		t.Fatalf("cancelled waiter: %v", err)
	}
}

func TestBulkheadBoundUnderConcurrency(t *testing.T) {
	b := NewBulkhead("t", 3, time.Minute)
	var mu sync.Mutex
	inside, peak := 0, 0
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			peak = max(peak, inside)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			r()
		}()
	}
	wg.Wait()
	if peak > 3 {
		t.Fatalf("%d calls inside a bulkhead of 3", peak)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewRateLimit("r", 10, 3, 0)
	l.now = func() time.Time { return now }
	admitted := 0
	for range 10 {
		if l.Wait(context.Background()) == nil {
			admitted++
		}
	}
	if admitted != 3 {
		t.Fatalf("admitted %d at once with burst 3, want 3", admitted)
	}
	now = now.Add(200 * time.Millisecond) // 2 tokens at 10/s
	admitted = 0
	for range 10 {
		if err := l.Wait(context.Background()); err == nil {
			admitted++
		} else if !errors.Is(err, ErrLimited) {
			t.Fatal(err)
		}
	}
	if admitted != 2 {
		t.Fatalf("admitted %d after 200ms at 10/s, want 2", admitted)
	}
}

func TestRateLimitWaitsWithinMaxWait(t *testing.T) {
	l := NewRateLimit("r", 1000, 1, time.Second)
	for i := range 5 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatalf("call %d refused though a token comes within max wait: %v", i, err)
		}
	}
	slow := NewRateLimit("r", 0.001, 1, 10*time.Millisecond)
	_ = slow.Wait(context.Background())
	var le *LimitedError
	if err := slow.Wait(context.Background()); !errors.As(err, &le) || le.Wait < time.Second {
		t.Fatalf("want a refusal naming a long wait, got %v", err)
	}
}

func TestHedge(t *testing.T) {
	t.Run("slow first attempt: the hedge wins", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		v, attempt, err := Hedge(context.Background(), time.Millisecond, 2, func(ctx context.Context, a int) (string, error) {
			if a == 1 {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return "slow", ctx.Err()
			}
			return "fast", nil
		})
		if err != nil || v != "fast" || attempt != 2 {
			t.Fatalf("got %q from attempt %d, %v", v, attempt, err)
		}
	})
	t.Run("fast first attempt: no hedge", func(t *testing.T) {
		var mu sync.Mutex
		calls := 0
		v, attempt, err := Hedge(context.Background(), time.Hour, 3, func(ctx context.Context, a int) (int, error) {
			mu.Lock()
			calls++
			mu.Unlock()
			return 7, nil
		})
		if err != nil || v != 7 || attempt != 1 || calls != 1 {
			t.Fatalf("v=%d attempt=%d calls=%d err=%v", v, attempt, calls, err)
		}
	})
	t.Run("all fail: first error", func(t *testing.T) {
		first := errors.New("first")
		gate := make(chan struct{})
		_, _, err := Hedge(context.Background(), time.Millisecond, 2, func(ctx context.Context, a int) (int, error) {
			if a == 1 {
				<-gate // fail only after the hedge has failed
				return 0, first
			}
			defer close(gate)
			return 0, errors.New("second")
		})
		if !errors.Is(err, first) {
			t.Fatalf("err %v, want the first attempt's", err)
		}
	})
	t.Run("failure does not start another attempt", func(t *testing.T) {
		calls := 0
		_, _, err := Hedge(context.Background(), time.Hour, 3, func(ctx context.Context, a int) (int, error) {
			calls++
			return 0, errors.New("boom")
		})
		if err == nil || calls != 1 {
			t.Fatalf("calls %d err %v", calls, err)
		}
	})
}
