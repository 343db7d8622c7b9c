package peers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/embedded"
	"github.com/breakwater-dev/breakwater/host/headers"
)

func startNATS(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv, err := embedded.Start(context.Background(), embedded.Options{Port: -1, StoreDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// collect subscribes to subject and returns the headers+body of what arrives.
func collect(t *testing.T, nc *nats.Conn, subject string) (func(n int) []*nats.Msg, func() int) {
	t.Helper()
	var mu sync.Mutex
	var got []*nats.Msg
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) { mu.Lock(); got = append(got, m); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	wait := func(n int) []*nats.Msg {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			if len(got) >= n {
				out := append([]*nats.Msg(nil), got...)
				mu.Unlock()
				return out
			}
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%s: %d messages of %d after 20s", subject, len(got), n)
		return nil
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	return wait, count
}

func echoTarget(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(append([]byte("echo:"), b...))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func publishN(t *testing.T, js jetstream.JetStream, subject string, n int) {
	t.Helper()
	for i := range n {
		m := nats.NewMsg(subject)
		m.Header.Set(headers.MsgID, "m"+strconv.Itoa(i))
		m.Data = []byte(`{"i":` + strconv.Itoa(i) + `}`)
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

func checkOutcomes(t *testing.T, got []*nats.Msg, n int, durable string) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range got {
		id := m.Header.Get(headers.OriginalID)
		i, err := strconv.Atoi(strings.TrimPrefix(id, "m"))
		if err != nil || i >= n {
			t.Fatalf("outcome with original id %q", id)
		}
		if want := fmt.Sprintf(`echo:{"i":%d}`, i); string(m.Data) != want {
			t.Fatalf("outcome %q, want %q", m.Data, want)
		}
		if !strings.HasPrefix(m.Header.Get(headers.MsgID), durable+":") {
			t.Fatalf("outcome Nats-Msg-Id %q", m.Header.Get(headers.MsgID))
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct outcomes, want %d", len(seen), n)
	}
}

func TestHandWorker(t *testing.T) {
	nc, js := startNATS(t)
	target := echoTarget(t)
	wait, _ := collect(t, nc, "hand.out")
	stop, err := StartHandWorker(context.Background(), js, HandConfig{InStream: "HAND_IN", InSubject: "hand.in", OutStream: "HAND_OUT", OutSubject: "hand.out",
		TargetURL: target.URL, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	const n = 100
	publishN(t, js, "hand.in", n)
	checkOutcomes(t, wait(n), n, "hand")
	// Every input acked: the work queue drains.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, _ := js.Stream(context.Background(), "HAND_IN")
		if s.CachedInfo().State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			info, _ := s.Info(context.Background())
			if info.State.Msgs != 0 {
				t.Fatalf("%d inputs left unacked", info.State.Msgs)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
}

func TestWatermill(t *testing.T) {
	nc, js := startNATS(t)
	var flaky sync.Map // payload → failures so far
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case strings.Contains(string(b), "poison"):
			w.WriteHeader(500)
			return
		case strings.Contains(string(b), "flaky"):
			v, _ := flaky.LoadOrStore(string(b), new(atomic.Int32))
			if v.(*atomic.Int32).Add(1) <= 2 {
				w.WriteHeader(503)
				return
			}
		}
		_, _ = w.Write(append([]byte("echo:"), b...))
	}))
	defer target.Close()
	wait, _ := collect(t, nc, "wm.out")
	waitPoison, _ := collect(t, nc, "wm.poison")
	url := nc.ConnectedUrl()
	stop, err := StartWatermill(context.Background(), url, WatermillConfig{InStream: "WM_IN", InTopic: "wm.in", OutStream: "WM_OUT", OutTopic: "wm.out",
		PoisonStream: "WM_POISON", PoisonTopic: "wm.poison", TargetURL: target.URL, Concurrency: 8,
		Backoff: BackoffConfig{Initial: time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	const n = 100
	publishN(t, js, "wm.in", n)
	checkOutcomes(t, wait(n), n, "watermill")

	// A message failing twice succeeds on its third attempt; one always
	// failing goes to the poison topic after MaxAttempts.
	for _, p := range []string{"flaky", "poison"} {
		if _, err := js.Publish(context.Background(), "wm.in", []byte(`{"kind":"`+p+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	got := wait(n + 1)
	if last := string(got[len(got)-1].Data); last != `echo:{"kind":"flaky"}` {
		t.Fatalf("flaky outcome %q", last)
	}
	poisoned := waitPoison(1)
	if string(poisoned[0].Data) != `{"kind":"poison"}` {
		t.Fatalf("poison message %q", poisoned[0].Data)
	}
	stop()
}

func TestFailsafeRetryMatchesNative(t *testing.T) {
	ctx := context.Background()
	native := Native(DefaultBackoff)
	fs := NewFailsafeRetry(DefaultBackoff)
	cases := []abi.AttemptError{
		{Kind: abi.ErrorStatus, Status: 503}, {Kind: abi.ErrorStatus, Status: 500}, {Kind: abi.ErrorStatus, Status: 429},
		{Kind: abi.ErrorStatus, Status: 408}, {Kind: abi.ErrorStatus, Status: 404}, {Kind: abi.ErrorStatus, Status: 400},
		{Kind: abi.ErrorTimeout}, {Kind: abi.ErrorConnect}, {Kind: abi.ErrorBreakerOpen}, {Kind: abi.ErrorBadInput}, {Kind: abi.ErrorUnknownRoute},
	}
	for _, e := range cases {
		for attempt := uint32(1); attempt <= 6; attempt++ {
			in := DecisionInput()
			in.Attempt, in.MaxAttempts, in.Error = attempt, 5, e
			want, _ := native.DecideRetry(ctx, in)
			got, err := fs.DecideRetry(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Retry != want.Retry {
				t.Fatalf("%+v attempt %d: failsafe retry=%v (%s), native %v (%s)", e, attempt, got.Retry, got.Reason, want.Retry, want.Reason)
			}
			if got.Retry {
				// Both jitter ±50% around 200ms·2^(n-1).
				nominal := float64(int64(200) << (attempt - 1))
				if d := float64(got.DelayMs); d < nominal*0.5-1 || d > nominal*1.5+1 {
					t.Fatalf("%+v attempt %d: failsafe delay %dms, nominal %vms", e, attempt, got.DelayMs, nominal)
				}
			}
		}
	}
	// No sleeping: a decision is fast.
	in := DecisionInput()
	t0 := time.Now()
	for range 1000 {
		if d, _ := fs.DecideRetry(ctx, in); !d.Retry {
			t.Fatal("503 at 1 of 3 not retried")
		}
	}
	if el := time.Since(t0); el > 2*time.Second {
		t.Fatalf("1000 decisions took %v", el)
	}
}

func TestFailsafeRequester(t *testing.T) {
	nc, _ := startNATS(t)
	if _, err := nc.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	r := NewFailsafeRequester(nc, "svc.echo", SyncConfig{Timeout: time.Second, MaxAttempts: 3, Backoff: BackoffConfig{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2}})
	m, err := r.Request(context.Background(), []byte("hi"))
	if err != nil || string(m.Data) != "hi" {
		t.Fatalf("request: %v %v", m, err)
	}
	// No responders: three attempts, then the last error; five such calls
	// (15 failures) open the breaker.
	var attempts atomic.Int32
	if _, err := nc.Subscribe("svc.count", func(m *nats.Msg) { attempts.Add(1) }); err != nil {
		t.Fatal(err)
	}
	bad := NewFailsafeRequester(nc, "svc.count", SyncConfig{Timeout: 20 * time.Millisecond, MaxAttempts: 3, BreakerFailures: 3, Backoff: BackoffConfig{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2}})
	if _, err := bad.Request(context.Background(), []byte("x")); err == nil {
		t.Fatal("no error from a silent service")
	}
	if n := attempts.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	if _, err := bad.Request(context.Background(), []byte("x")); err == nil || !strings.Contains(err.Error(), "open") {
		t.Fatalf("breaker not open: %v", err)
	}
}

func TestDeciders(t *testing.T) {
	ctx := context.Background()
	in := DecisionInput()

	constant, err := RepoFile("modules/retry-constant.wasm")
	if err != nil {
		t.Fatal(err)
	}
	floor, err := NewWazeroFloor(ctx, constant)
	if err != nil {
		t.Fatal(err)
	}
	defer floor.Close(ctx)
	if d, err := floor.DecideRetry(ctx, in); err != nil || d != (abi.RetryDecision{Retry: true, DelayMs: 100, Reason: "constant"}) {
		t.Fatalf("wazero floor: %+v %v", d, err)
	}

	goGuest, err := RepoFile("modules/retry-status-aware.wasm")
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	bw, closeBW, err := EngineDecider(ctx, e, "status-aware", goGuest, true)
	if err != nil {
		t.Fatal(err)
	}
	defer closeBW()
	x, err := NewExtism(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close(ctx)

	// The Extism plugin decides as retry-status-aware does.
	cases := []abi.AttemptError{
		{Kind: abi.ErrorStatus, Status: 503}, {Kind: abi.ErrorStatus, Status: 429}, {Kind: abi.ErrorStatus, Status: 404},
		{Kind: abi.ErrorTimeout}, {Kind: abi.ErrorConnect}, {Kind: abi.ErrorBadInput}, {Kind: abi.ErrorNone}, {Kind: "future_kind"},
	}
	for _, cfg := range []string{"", `{"delay_ms":50,"multiplier":2,"max_delay_ms":300}`} {
		for _, ae := range cases {
			for attempt := uint32(1); attempt <= 4; attempt++ {
				in := DecisionInput()
				in.Attempt, in.MaxAttempts, in.Error, in.Config = attempt, 4, ae, []byte(cfg)
				want, err := bw(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				got, err := x.DecideRetry(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("config %q %+v attempt %d: extism %+v, breakwater %+v", cfg, ae, attempt, got, want)
				}
			}
		}
	}
}
