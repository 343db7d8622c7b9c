package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// stdioWriter logs a guest's stdout and stderr, at most cap bytes per call,
// and keeps the call's lines for CallStats and breach errors.
type stdioWriter struct {
	log    *slog.Logger
	module string
	cap    int

	mu       sync.Mutex
	warmUp   bool   // output of a warm-up call: debug level
	route    string // the call's route and message, for the log lines
	msgID    string
	written  int
	dropped  int
	sawOOM   bool
	lines    []string // the call's output, line by line (within cap)
	partial  []byte   // an unfinished last line
	panicMsg string   // a Go guest's "panic: ..." line, if any
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
	w.keep(q)
	text := string(bytes.TrimRight(q, "\n"))
	if w.warmUp {
		w.log.Debug("module output", slog.String("module", w.module), slog.String("output", text), slog.Bool("warm_up", true))
	} else {
		w.log.Info("module output", slog.String("module", w.module), slog.String("route", w.route), slog.String("message_id", w.msgID), slog.String("output", text))
	}
	return len(p), nil
}

// keep splits q into the call's lines; a Go guest's panic line is noted.
func (w *stdioWriter) keep(q []byte) {
	w.partial = append(w.partial, q...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		w.lines = append(w.lines, line)
		if w.panicMsg == "" && strings.HasPrefix(line, "panic: ") {
			w.panicMsg = strings.TrimSuffix(strings.TrimPrefix(line, "panic: "), " [recovered]")
		}
	}
}

// begin starts a call's allowance and capture; it reports what the last
// call dropped.
func (w *stdioWriter) begin(route, msgID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped > 0 {
		w.log.Warn("module output truncated", slog.String("module", w.module), slog.String("route", w.route), slog.String("message_id", w.msgID),
			slog.Int("dropped_bytes", w.dropped), slog.Int("cap_bytes", w.cap))
	}
	w.written, w.dropped, w.sawOOM = 0, 0, false
	w.lines, w.partial, w.panicMsg = nil, nil, ""
	w.route, w.msgID = route, msgID
}

// reset starts a new call's allowance outside any route's call.
func (w *stdioWriter) reset() { w.begin("", "") }

// output returns the call's lines so far (an unfinished last line too) and
// the message of a Go panic, if the guest printed one.
func (w *stdioWriter) output() (lines []string, panicMsg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines = append([]string(nil), w.lines...)
	if len(w.partial) > 0 {
		lines = append(lines, string(w.partial))
	}
	return lines, w.panicMsg
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
