package engine

import (
	"bytes"
	"log/slog"
	"sync"
)

// stdioWriter logs a guest's stdout and stderr, at most cap bytes per call.
type stdioWriter struct {
	log    *slog.Logger
	module string
	cap    int

	mu        sync.Mutex
	warmUp    bool // output of a warm-up call: debug level
	written   int
	dropped   int
	sawOOM    bool
	lastLines bytes.Buffer
}

func (w *stdioWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte("out of memory")) {
		w.sawOOM = true
	}
	room := w.cap - w.written
	if room <= 0 {
		w.dropped += len(p)
		return len(p), nil
	}
	q := p
	if len(q) > room {
		w.dropped += len(q) - room
		q = q[:room]
	}
	w.written += len(q)
	if w.warmUp {
		w.log.Debug("module output", slog.String("module", w.module), slog.String("output", string(bytes.TrimRight(q, "\n"))), slog.Bool("warm_up", true))
	} else {
		w.log.Info("module output", slog.String("module", w.module), slog.String("output", string(bytes.TrimRight(q, "\n"))))
	}
	return len(p), nil
}

// reset starts a new call's allowance; it reports what the last call
// dropped.
func (w *stdioWriter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped > 0 {
		w.log.Warn("module output truncated", slog.String("module", w.module), slog.Int("dropped_bytes", w.dropped), slog.Int("cap_bytes", w.cap))
	}
	w.written, w.dropped, w.sawOOM = 0, 0, false
}

func (w *stdioWriter) setWarmUp(on bool) {
	w.mu.Lock()
	w.warmUp = on
	w.mu.Unlock()
}

func (w *stdioWriter) outOfMemory() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sawOOM
}
