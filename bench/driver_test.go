package bench

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// window drives a closed loop: at most inFlight messages outstanding, n in
// all. send(i) publishes message i; the system under test calls done(i) when
// message i's result arrives. It reports msgs/s and p50/p99 latency.
type window struct {
	mu      sync.Mutex
	sent    []time.Time
	lat     []time.Duration
	slots   chan struct{}
	pending sync.WaitGroup
}

func newWindow(n, inFlight int) *window {
	w := &window{sent: make([]time.Time, n), lat: make([]time.Duration, 0, n), slots: make(chan struct{}, inFlight)}
	w.pending.Add(n)
	return w
}

func (w *window) run(b *testing.B, n int, send func(i int)) {
	b.Helper()
	start := time.Now()
	for i := range n {
		w.slots <- struct{}{}
		w.mu.Lock()
		w.sent[i] = time.Now()
		w.mu.Unlock()
		send(i)
	}
	done := make(chan struct{})
	go func() { w.pending.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("results missing after 5 minutes")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(w.lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(ms(w.lat[len(w.lat)/2]), "p50-ms")
	b.ReportMetric(ms(w.lat[len(w.lat)*99/100]), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// done records message i's result; duplicates are ignored by the caller.
func (w *window) done(i int) {
	w.mu.Lock()
	w.lat = append(w.lat, time.Since(w.sent[i]))
	w.mu.Unlock()
	<-w.slots
	w.pending.Done()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
