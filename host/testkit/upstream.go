package testkit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Reply is what an Upstream answers to one call.
type Reply struct {
	Status int // 0: 200
	Body   string
	Header http.Header
	// Delay holds the answer back; a request whose client gives up first
	// ends the wait.
	Delay time.Duration
}

// Responder chooses the reply to a call: req is the request, body its
// body, n the call's number (1-based, over every call).
type Responder func(req *http.Request, body []byte, n int) Reply

// Upstream is a real HTTP target on loopback whose behaviour a test sets
// and changes; it counts calls. Safe for concurrent use.
type Upstream struct {
	*httptest.Server
	mu      sync.Mutex
	respond Responder
	calls   int
}

// NewUpstream starts an upstream answering 200 {"ok":true} until told
// otherwise, and closes it when the test ends.
func NewUpstream(t testing.TB) *Upstream {
	t.Helper()
	u := &Upstream{}
	u.Set(Reply{Status: http.StatusOK, Body: `{"ok":true}`})
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

// Set makes every following call answer r.
func (u *Upstream) Set(r Reply) {
	u.Respond(func(*http.Request, []byte, int) Reply { return r })
}

// Respond makes f choose the reply of every following call.
func (u *Upstream) Respond(f Responder) {
	u.mu.Lock()
	u.respond = f
	u.mu.Unlock()
}

// Calls returns how many calls the upstream has received.
func (u *Upstream) Calls() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.calls++
	n, f := u.calls, u.respond
	u.mu.Unlock()
	rep := f(r, body, n)
	if rep.Delay > 0 {
		select {
		case <-time.After(rep.Delay):
		case <-r.Context().Done():
			return
		}
	}
	for k, v := range rep.Header {
		w.Header()[k] = v
	}
	if rep.Status == 0 {
		rep.Status = http.StatusOK
	}
	w.WriteHeader(rep.Status)
	_, _ = io.WriteString(w, rep.Body)
}
