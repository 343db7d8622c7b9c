package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/bench/internal/harness"
)

// runSeq numbers runs, so that message ids (de-duplicated by JetStream)
// never repeat across runs and systems.
var runSeq atomic.Int64

// window drives a closed loop: at most inFlight messages outstanding, n in
// all. send(i) publishes message i; the system under test calls done(i)
// when message i's result arrives (once: later calls are ignored).
type window struct {
	mu    sync.Mutex
	sent  []time.Time
	got   []bool
	lat   []time.Duration
	slots chan struct{}
	left  sync.WaitGroup
}

func newWindow(n, inFlight int) *window {
	w := &window{sent: make([]time.Time, n), got: make([]bool, n), lat: make([]time.Duration, 0, n), slots: make(chan struct{}, inFlight)}
	w.left.Add(n)
	return w
}

// done records message i's result.
func (w *window) done(i int) {
	w.mu.Lock()
	if i < 0 || i >= len(w.got) || w.got[i] {
		w.mu.Unlock()
		return
	}
	w.got[i] = true
	w.lat = append(w.lat, time.Since(w.sent[i]))
	w.mu.Unlock()
	<-w.slots
	w.left.Done()
}

// run sends n messages through send within limit and returns the sample.
func (w *window) run(ctx context.Context, n int, limit time.Duration, send func(i int) error) (harness.Sample, error) {
	start := time.Now()
	for i := range n {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return harness.Sample{}, ctx.Err()
		}
		w.mu.Lock()
		w.sent[i] = time.Now()
		w.mu.Unlock()
		if err := send(i); err != nil {
			return harness.Sample{}, fmt.Errorf("sending message %d: %w", i, err)
		}
	}
	done := make(chan struct{})
	go func() { w.left.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		w.mu.Lock()
		got := len(w.lat)
		w.mu.Unlock()
		return harness.Sample{}, fmt.Errorf("%d of %d results missing after %v", n-got, n, limit)
	case <-ctx.Done():
		return harness.Sample{}, ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return harness.Sample{Latencies: w.lat, Ops: n, Elapsed: time.Since(start)}, nil
}
