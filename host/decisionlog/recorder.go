package decisionlog

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Recorder publishes records to BW_DECISIONS in the background. Record
// never blocks and never fails a decision: when the queue is full, the
// record is dropped and counted. Safe for concurrent use.
type Recorder struct {
	nc        *nats.Conn
	log       *slog.Logger
	onDropped func()
	onWritten func(route string)
	queue     chan *Record
	done      chan struct{}
	closeOnce sync.Once
	dropped   atomic.Int64
	lastWarn  atomic.Int64 // unix nanoseconds of the last "dropped" warning
}

// RecorderOptions configure a Recorder.
type RecorderOptions struct {
	// Queue bounds the records waiting to be published (default 4096).
	Queue int
	Log   *slog.Logger
	// OnWritten and OnDropped, if set, hear each record published or
	// dropped (a full queue, or one too large even when cut), for metrics.
	OnWritten func(route string)
	OnDropped func()
}

// NewRecorder starts a Recorder publishing on nc.
func NewRecorder(nc *nats.Conn, o RecorderOptions) *Recorder {
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	r := &Recorder{nc: nc, log: o.Log, onDropped: o.OnDropped, onWritten: o.OnWritten, queue: make(chan *Record, o.Queue), done: make(chan struct{})}
	go r.run()
	return r
}

// Record queues rec for publishing; rec must not be changed afterwards.
func (r *Recorder) Record(rec *Record) {
	select {
	case r.queue <- rec:
	default:
		r.drop("the queue of records is full (publishing is slower than deciding)")
	}
}

// Dropped is the number of records dropped so far.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

func (r *Recorder) drop(why string) {
	n := r.dropped.Add(1)
	if r.onDropped != nil {
		r.onDropped()
	}
	now := time.Now().UnixNano()
	if last := r.lastWarn.Load(); now-last > int64(10*time.Second) && r.lastWarn.CompareAndSwap(last, now) {
		r.log.Warn("decision records dropped", slog.String("why", why), slog.Int64("dropped_total", n))
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	for rec := range r.queue {
		b, err := Marshal(rec, int(r.nc.MaxPayload())-1024) // room for headers
		if err != nil {
			r.drop(err.Error())
			continue
		}
		if err := r.nc.Publish(Subject(rec.Route), b); err != nil {
			r.drop("publishing: " + err.Error())
			continue
		}
		if r.onWritten != nil {
			r.onWritten(rec.Route)
		}
	}
}

// Close publishes what is queued (until ctx ends) and stops.
func (r *Recorder) Close(ctx context.Context) {
	r.closeOnce.Do(func() { close(r.queue) })
	select {
	case <-r.done:
		_ = r.nc.FlushWithContext(ctx)
	case <-ctx.Done():
	}
}
