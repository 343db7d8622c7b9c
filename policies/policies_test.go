package policies_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/guest-sdk/sdktest"
	"github.com/breakwater-dev/breakwater/host/engine"
)

// modulesDir holds the built modules (policies/build.sh writes them).
const modulesDir = "../modules"

// load returns modules/<name>.wasm run by sdktest: every call on the
// host's engine (the runtime's `module run`), under the default limits and
// fuel metering, as the runtime calls it.
func load(tb testing.TB, name string) *sdktest.Module {
	tb.Helper()
	return loadWith(tb, name, sdktest.Options{})
}

func loadWith(tb testing.TB, name string, opts sdktest.Options) *sdktest.Module {
	tb.Helper()
	m, err := sdktest.Load(context.Background(), filepath.Join(modulesDir, name+".wasm"), opts)
	if err != nil {
		tb.Fatalf("loading %s (build it with policies/build.sh): %v", name, err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// newEngine returns a host engine for the tests that call it directly.
func newEngine(tb testing.TB, o engine.Options) *engine.Engine {
	tb.Helper()
	ctx := context.Background()
	o.CacheDir = filepath.Join(os.TempDir(), "breakwater-engine-test-cache")
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.PoolSize == 0 {
		o.PoolSize = 1
	}
	e, err := engine.New(ctx, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close(ctx) })
	return e
}

// engineModule loads modules/<name>.wasm into e, as spec says (its Name,
// Version and Wasm are filled in).
func engineModule(tb testing.TB, e *engine.Engine, name string, spec engine.LoadSpec) *engine.Module {
	tb.Helper()
	ctx := context.Background()
	wasm, err := os.ReadFile(filepath.Join(modulesDir, name+".wasm"))
	if err != nil {
		tb.Fatalf("reading module %s (build it with policies/build.sh): %v", name, err)
	}
	spec.Name, spec.Version, spec.Wasm = name, "1", wasm
	m, err := e.Load(ctx, spec)
	if err != nil {
		tb.Fatalf("loading %s: %v", name, err)
	}
	tb.Cleanup(func() { m.Close(ctx) })
	return m
}

func TestModuleExports(t *testing.T) {
	tests := []struct {
		module string
		kinds  []string
	}{
		{"retry-exponential", []string{"retry"}},
		{"retry-status-aware", []string{"retry"}},
		{"fallback-cache-then-stub", []string{"fallback"}},
		{"stub-template", []string{"stub"}},
		{"classify-json-error", []string{"classify"}},
		{"retry-constant", []string{"retry"}},
	}
	e := newEngine(t, engine.Options{})
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			m := load(t, tt.module)
			if v := engineModule(t, e, tt.module, engine.LoadSpec{}).Info().ABIVersion; v != abi.Version {
				t.Errorf("bw_abi_version() = %d, want %d", v, abi.Version)
			}
			if got := m.Kinds(); !reflect.DeepEqual(got, tt.kinds) {
				t.Errorf("kinds = %v, want %v", got, tt.kinds)
			}
			// Exactly the ABI's exports: nothing else leaks out of the SDK.
			want := []string{"bw_abi_version", "bw_alloc"}
			for _, k := range tt.kinds {
				want = append(want, "bw_"+k)
			}
			if tt.module != "retry-constant" {
				want = append(want, "_initialize")
			}
			slices.Sort(want)
			if got := m.Exports(); !reflect.DeepEqual(got, want) {
				t.Errorf("exported functions = %v, want %v", got, want)
			}
		})
	}
}

func statusErr(code int32) abi.AttemptError {
	return abi.AttemptError{Attempt: 1, Kind: abi.ErrorStatus, Status: code, Message: fmt.Sprintf("HTTP %d", code)}
}

func kindErr(kind abi.ErrorKind) abi.AttemptError {
	return abi.AttemptError{Attempt: 1, Kind: kind, Message: string(kind)}
}

func classifiedErr(kind abi.ErrorKind, status int32) abi.AttemptError {
	return abi.AttemptError{Attempt: 1, Kind: kind, Status: status, Message: `body field "error": "busy"`}
}

func TestRetryStatusAware(t *testing.T) {
	const throttled = `{"delay_ms": 50, "throttled_delay_ms": 1000}`
	tests := []struct {
		name      string
		err       abi.AttemptError
		attempt   uint32
		max       uint32
		config    string
		retry     bool
		delayMs   int64
		reasonHas string
	}{
		{name: "503", err: statusErr(503), retry: true, delayMs: 200, reasonHas: "status 503"},
		{name: "500", err: statusErr(500), retry: true, delayMs: 200},
		{name: "599", err: statusErr(599), retry: true, delayMs: 200},
		{name: "408", err: statusErr(408), retry: true, delayMs: 200},
		{name: "429 default delay", err: statusErr(429), retry: true, delayMs: 200},
		{name: "429 throttled delay", err: statusErr(429), config: throttled, retry: true, delayMs: 1000},
		{name: "404", err: statusErr(404), retry: false, reasonHas: "status 404 is not retryable"},
		{name: "400", err: statusErr(400), retry: false},
		{name: "401", err: statusErr(401), retry: false},
		{name: "409", err: statusErr(409), retry: false},
		{name: "499", err: statusErr(499), retry: false},
		{name: "302", err: statusErr(302), retry: false},
		{name: "600", err: statusErr(600), retry: false},
		{name: "timeout", err: kindErr(abi.ErrorTimeout), retry: true, delayMs: 200, reasonHas: "timeout"},
		{name: "connect", err: kindErr(abi.ErrorConnect), retry: true, delayMs: 200},
		{name: "breaker_open", err: kindErr(abi.ErrorBreakerOpen), config: throttled, retry: true, delayMs: 1000},
		{name: "bulkhead_full", err: kindErr(abi.ErrorBulkheadFull), config: throttled, retry: true, delayMs: 1000},
		{name: "rate_limited", err: kindErr(abi.ErrorRateLimited), config: throttled, retry: true, delayMs: 1000},
		{name: "timeout not throttled", err: kindErr(abi.ErrorTimeout), config: throttled, retry: true, delayMs: 50},
		{name: "bad_input", err: kindErr(abi.ErrorBadInput), retry: false, reasonHas: "not retryable"},
		{name: "classified_retryable", err: classifiedErr(abi.ErrorClassifiedRetryable, 200), retry: true, delayMs: 200, reasonHas: "classified_retryable"},
		{name: "classified_retryable 429 throttled", err: classifiedErr(abi.ErrorClassifiedRetryable, 429), config: throttled, retry: true, delayMs: 1000},
		{name: "classified_permanent", err: classifiedErr(abi.ErrorClassifiedPermanent, 200), retry: false, reasonHas: "classified_permanent is not retryable"},
		{name: "classified_permanent 503", err: classifiedErr(abi.ErrorClassifiedPermanent, 503), retry: false},
		{name: "switched_off", err: kindErr(abi.ErrorSwitchedOff), retry: false},
		{name: "unknown_route", err: kindErr(abi.ErrorUnknownRoute), retry: false},
		{name: "no error", err: abi.AttemptError{}, retry: false, reasonHas: "no error"},
		{name: "internal", err: kindErr(abi.ErrorInternal), retry: true, delayMs: 200},
		{name: "kind from a newer host", err: kindErr("quantum_flux"), retry: true, delayMs: 200},
		{name: "custom delay", err: statusErr(502), config: `{"delay_ms": 75}`, retry: true, delayMs: 75},
		{name: "multiplier", err: statusErr(502), attempt: 3, config: `{"delay_ms": 100, "multiplier": 3}`, retry: true, delayMs: 900},
		{name: "multiplier capped", err: statusErr(502), attempt: 10, config: `{"delay_ms": 100, "multiplier": 3, "max_delay_ms": 5000}`, retry: true, delayMs: 5000},
		{name: "route max attempts", err: statusErr(503), attempt: 5, max: 5, retry: false, reasonHas: "route"},
		{name: "policy max attempts", err: statusErr(503), attempt: 2, max: 5, config: `{"max_attempts": 2}`, retry: false, reasonHas: "policy"},
		{name: "below max attempts", err: statusErr(503), attempt: 4, max: 5, retry: true, delayMs: 200},
	}
	m := load(t, "retry-status-aware")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := abi.Input{Route: "orders", MessageID: "m1", Attempt: max(tt.attempt, 1), MaxAttempts: tt.max,
				Error: tt.err, Config: []byte(tt.config)}
			d, _, err := m.Retry(context.Background(), &in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Retry != tt.retry {
				t.Errorf("retry = %v, want %v (reason %q)", d.Retry, tt.retry, d.Reason)
			}
			if tt.retry && d.DelayMs != tt.delayMs {
				t.Errorf("delay_ms = %d, want %d", d.DelayMs, tt.delayMs)
			}
			if !strings.Contains(d.Reason, tt.reasonHas) {
				t.Errorf("reason %q does not contain %q", d.Reason, tt.reasonHas)
			}
		})
	}
}

func TestRetryExponential(t *testing.T) {
	tests := []struct {
		name   string
		config string
		caps   []int64 // the delay cap for attempts 1, 2, ...
	}{
		{"defaults", "", []int64{100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000}},
		{"custom", `{"initial_ms": 50, "max_ms": 1000, "multiplier": 3}`, []int64{50, 150, 450, 1000, 1000}},
		{"constant", `{"initial_ms": 20, "max_ms": 20, "multiplier": 1}`, []int64{20, 20, 20}},
	}
	// The runtime's `module run` seeds the guest's random numbers the same
	// way for every call (so that a call's fuel depends on its input
	// alone): the jitter is not random here, and the test checks the
	// documented range, [0, cap], of each delay.
	m := load(t, "retry-exponential")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, ceiling := range tt.caps {
				attempt := uint32(i + 1)
				for _, id := range []string{"m1", "m2"} {
					d, _, err := m.Retry(context.Background(), &abi.Input{Route: "r", MessageID: id, Attempt: attempt,
						Error: statusErr(503), Config: []byte(tt.config)})
					if err != nil {
						t.Fatal(err)
					}
					if !d.Retry || d.DelayMs < 0 || d.DelayMs > ceiling {
						t.Fatalf("attempt %d: %+v, want a retry with delay in [0, %d]", attempt, d, ceiling)
					}
				}
			}
		})
	}
}

func TestRetryExponentialLimits(t *testing.T) {
	m := load(t, "retry-exponential")
	tests := []struct {
		name      string
		attempt   uint32
		max       uint32
		config    string
		retry     bool
		reasonHas string
	}{
		{"first attempt", 1, 0, "", true, "exponential"},
		{"route limit reached", 3, 3, "", false, "route"},
		{"policy limit reached", 2, 10, `{"max_attempts": 2}`, false, "policy"},
		{"under both limits", 2, 10, `{"max_attempts": 3}`, true, "exponential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _, err := m.Retry(context.Background(), &abi.Input{Route: "r", Attempt: tt.attempt, MaxAttempts: tt.max,
				Error: kindErr(abi.ErrorTimeout), Config: []byte(tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			if d.Retry != tt.retry || !strings.Contains(d.Reason, tt.reasonHas) {
				t.Errorf("got %+v, want retry=%v with reason containing %q", d, tt.retry, tt.reasonHas)
			}
		})
	}
}

func TestFallbackCacheThenStub(t *testing.T) {
	tests := []struct {
		name   string
		cache  bool
		config string
		want   abi.FallbackAction
	}{
		{"cache available", true, "", abi.FallbackCache},
		{"cache available and stub", true, `{"has_stub": true}`, abi.FallbackCache},
		{"stub", false, `{"has_stub": true}`, abi.FallbackStub},
		{"nothing", false, `{"has_stub": false}`, abi.FallbackDeadLetter},
		{"no config", false, "", abi.FallbackDeadLetter},
	}
	m := load(t, "fallback-cache-then-stub")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _, err := m.Fallback(context.Background(), &abi.Input{Route: "r", Error: statusErr(503),
				CacheAvailable: tt.cache, Config: []byte(tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			if d.Action != tt.want || d.Reason == "" {
				t.Errorf("got %+v, want action %q with a reason", d, tt.want)
			}
		})
	}
}

func TestStubTemplate(t *testing.T) {
	const catalog = `{"template": {"status": "temporarily unavailable", "price": 0, "route": "{{route}}"}, "copy": ["name", "id"]}`
	tests := []struct {
		name        string
		config      string
		payload     string
		want        string // the stub payload, compared as JSON bytes
		contentType string
	}{
		{"copy fields", catalog, `{"name": "widget", "id": 7, "qty": 2}`,
			`{"id":7,"name":"widget","price":0,"route":"catalog","status":"temporarily unavailable"}`, "application/json"},
		{"missing payload keys", catalog, `{"id": "A-1"}`,
			`{"id":"A-1","price":0,"route":"catalog","status":"temporarily unavailable"}`, "application/json"},
		{"payload not JSON", catalog, `not json`,
			`{"price":0,"route":"catalog","status":"temporarily unavailable"}`, "application/json"},
		{"payload a JSON array", catalog, `[1,2]`,
			`{"price":0,"route":"catalog","status":"temporarily unavailable"}`, "application/json"},
		{"copied value overrides the template", `{"template": {"name": "unknown"}, "copy": ["name"]}`, `{"name": {"first": "a"}}`,
			`{"name":{"first":"a"}}`, "application/json"},
		{"nested placeholders and numbers kept exact",
			`{"template": {"meta": {"id": "{{message_id}}", "on": ["{{subject}}", "{{other}}"]}, "big": 12345678901234567890}, "content_type": "application/vnd.stub+json"}`,
			`{}`,
			`{"big":12345678901234567890,"meta":{"id":"m-9","on":["bw.in.catalog","{{other}}"]}}`, "application/vnd.stub+json"},
	}
	m := load(t, "stub-template")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, err := m.Stub(context.Background(), &abi.Input{Route: "catalog", Subject: "bw.in.catalog", MessageID: "m-9",
				Error: statusErr(503), Payload: []byte(tt.payload), Config: []byte(tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			if string(s.Payload) != tt.want {
				t.Errorf("payload\n got %s\nwant %s", s.Payload, tt.want)
			}
			if !json.Valid(s.Payload) {
				t.Errorf("payload is not valid JSON: %s", s.Payload)
			}
			want := map[string]string{"X-Stub": "true", "Content-Type": tt.contentType}
			if !reflect.DeepEqual(s.Headers, want) {
				t.Errorf("headers = %v, want %v", s.Headers, want)
			}
		})
	}
}

// TestBreaches checks that what a module cannot answer traps (the host's
// breach) with a message saying why, rather than returning an output.
func TestBreaches(t *testing.T) {
	tests := []struct {
		name    string
		module  string
		kind    string
		config  string
		wantMsg string
	}{
		{"bad config", "retry-exponential", "retry", `{"initial_ms": -1}`, "initial_ms must be > 0"},
		{"stub without template", "stub-template", "stub", `{}`, "template is required"},
		{"template not an object", "stub-template", "stub", `{"template": [1]}`, "template must be a JSON object"},
		{"bad body_errors", "classify-json-error", "classify", `{"body_errors": "fatal"}`, `body_errors must be "retryable" or "permanent"`},
		{"empty error_field", "classify-json-error", "classify", `{"error_field": ""}`, "error_field must not be empty"},
		{"bad success status", "classify-json-error", "classify", `{"success_statuses": [42]}`, "42 is not an HTTP status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := load(t, tt.module)
			in := configInput(tt.config)
			var out json.RawMessage
			_, err := m.Call(context.Background(), tt.kind, &in, &out)
			var be *sdktest.BreachError
			if !errors.As(err, &be) || be.Kind != sdktest.BreachTrap {
				t.Fatalf("call returned %s, %v; want a trap", out, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

// TestBreachesOnEngine covers inputs the runtime's JSON form of an Input
// refuses (no route, a config that is not JSON), so that sdktest cannot
// send them: the host's engine hands them to the module, which traps.
func TestBreachesOnEngine(t *testing.T) {
	tests := []struct {
		name    string
		module  string
		kind    engine.Kind
		in      abi.Input
		wantMsg string
	}{
		{"input without route", "retry-exponential", engine.KindRetry, abi.Input{Attempt: 1}, "abi: decoding Input.route"},
		{"config not JSON", "fallback-cache-then-stub", engine.KindFallback, configInput(`{`), "decoding module config"},
	}
	e := newEngine(t, engine.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := engineModule(t, e, tt.module, engine.LoadSpec{})
			var out abi.RetryDecision
			var o engine.Output = &out
			if tt.kind == engine.KindFallback {
				o = new(abi.FallbackDecision)
			}
			_, err := m.Run(context.Background(), tt.kind, &tt.in, engine.Limits{}, o)
			var be *engine.BreachError
			if !errors.As(err, &be) || be.Kind != engine.BreachTrap {
				t.Fatalf("err = %v, want a trap", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func configInput(config string) abi.Input {
	return abi.Input{Route: "r", Attempt: 1, Error: statusErr(503), Config: []byte(config)}
}

// TestInstanceReuse makes many calls on one instance, with inputs of very
// different sizes, to catch a buffer reused too early or grown wrongly. It
// calls the host's engine directly, with a pool of one instance: sdktest's
// runtime runs every call on a fresh instance.
func TestInstanceReuse(t *testing.T) {
	// Unmetered: the template's cost grows faster than the payload, and
	// 300 kB is far over any fuel budget; this test is about buffers.
	m := engineModule(t, newEngine(t, engine.Options{PoolSize: 1}), "stub-template", engine.LoadSpec{Unmetered: true})
	config := []byte(`{"template": {"r": "{{route}}"}, "copy": ["k"]}`)
	// Sizes jump up and down, so the guest's input buffer must grow and be
	// reused, and the output buffer too.
	for i, size := range []int{0, 100, 70_000, 3, 130_000, 10, 5000, 1, 300_000, 2} {
		val := strings.Repeat("v", size)
		payload, _ := json.Marshal(map[string]string{"k": val})
		route := fmt.Sprintf("route-%d", i)
		s, err := engine.Decide[abi.Stub](context.Background(), m, engine.KindStub, &abi.Input{Route: route, Payload: payload, Config: config},
			engine.Limits{OutputBytes: 1 << 20})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		var got map[string]string
		if err := json.Unmarshal(s.Payload, &got); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got["r"] != route || got["k"] != val {
			t.Fatalf("call %d: got r=%q and %d bytes of k, want %q and %d", i, got["r"], len(got["k"]), route, size)
		}
	}
}

// classifyCases are the rules of classify-json-error, shared by the test on
// sdktest and the one on the host's engine.
var classifyCases = []struct {
	name      string
	status    int32
	body      string
	config    string
	verdict   abi.Verdict
	reasonHas string
}{
	{name: "200 plain", status: 200, body: `{"id": 7}`, verdict: abi.VerdictSuccess, reasonHas: "status 200"},
	{name: "200 no body", status: 200, verdict: abi.VerdictSuccess},
	{name: "204", status: 204, verdict: abi.VerdictSuccess},
	{name: "200 error string", status: 200, body: `{"error": "quota exceeded"}`, verdict: abi.VerdictRetryable, reasonHas: `body field "error": "quota exceeded"`},
	{name: "201 error object", status: 201, body: `{"id": 1, "error": {"code": 42, "message": "nope"}}`, verdict: abi.VerdictRetryable, reasonHas: `"error": {"code":42,"message":"nope"}`},
	{name: "200 error true", status: 200, body: `{"error": true}`, verdict: abi.VerdictRetryable},
	{name: "200 error number", status: 200, body: `{"error": 0}`, verdict: abi.VerdictRetryable},
	{name: "200 error list", status: 200, body: `{"error": ["a"]}`, verdict: abi.VerdictRetryable},
	{name: "200 error null", status: 200, body: `{"error": null}`, verdict: abi.VerdictSuccess},
	{name: "200 error false", status: 200, body: `{"error": false}`, verdict: abi.VerdictSuccess},
	{name: "200 error empty string", status: 200, body: `{"error": ""}`, verdict: abi.VerdictSuccess},
	{name: "200 error empty object", status: 200, body: `{"error": { }}`, verdict: abi.VerdictSuccess},
	{name: "200 error empty list", status: 200, body: `{"error": [ ]}`, verdict: abi.VerdictSuccess},
	{name: "200 nested error ignored", status: 200, body: `{"data": {"error": "x"}}`, verdict: abi.VerdictSuccess},
	{name: "200 other case ignored", status: 200, body: `{"Error": "x"}`, verdict: abi.VerdictSuccess},
	{name: "200 array body", status: 200, body: `[{"error": "x"}]`, verdict: abi.VerdictSuccess},
	{name: "200 not JSON", status: 200, body: `error: x`, verdict: abi.VerdictSuccess},
	{name: "200 truncated JSON", status: 200, body: `{"error": "x"`, verdict: abi.VerdictSuccess},
	{name: "200 long error cut", status: 200, body: `{"error": "` + strings.Repeat("é", 100) + `"}`, verdict: abi.VerdictRetryable, reasonHas: `: "` + strings.Repeat("é", 31) + "…"},
	{name: "body errors permanent", status: 200, body: `{"error": "bad"}`, config: `{"body_errors": "permanent"}`, verdict: abi.VerdictPermanent, reasonHas: `"error": "bad"`},
	{name: "body errors retryable", status: 200, body: `{"error": "bad"}`, config: `{"body_errors": "retryable"}`, verdict: abi.VerdictRetryable},
	{name: "custom field", status: 200, body: `{"error": "x", "errors": [{"m": 1}]}`, config: `{"error_field": "errors"}`, verdict: abi.VerdictRetryable, reasonHas: `body field "errors": [{"m":1}]`},
	{name: "custom field absent", status: 200, body: `{"error": "x"}`, config: `{"error_field": "errors"}`, verdict: abi.VerdictSuccess},
	{name: "409 listed", status: 409, config: `{"success_statuses": [409]}`, verdict: abi.VerdictSuccess, reasonHas: "409 is listed in success_statuses"},
	{name: "409 not listed", status: 409, verdict: abi.VerdictPermanent, reasonHas: "status 409 is not retryable"},
	{name: "listed status skips the body rule", status: 200, body: `{"error": "x"}`, config: `{"success_statuses": [200]}`, verdict: abi.VerdictSuccess},
	{name: "503 listed", status: 503, config: `{"success_statuses": [409, 503]}`, verdict: abi.VerdictSuccess},
	{name: "408", status: 408, verdict: abi.VerdictRetryable, reasonHas: "status 408"},
	{name: "429", status: 429, verdict: abi.VerdictRetryable},
	{name: "500", status: 500, verdict: abi.VerdictRetryable},
	{name: "503 body error", status: 503, body: `{"error": "x"}`, config: `{"body_errors": "permanent"}`, verdict: abi.VerdictRetryable},
	{name: "599", status: 599, verdict: abi.VerdictRetryable},
	{name: "600", status: 600, verdict: abi.VerdictPermanent},
	{name: "404", status: 404, body: `{"error": "not found"}`, verdict: abi.VerdictPermanent, reasonHas: "status 404"},
	{name: "400", status: 400, verdict: abi.VerdictPermanent},
	{name: "302", status: 302, verdict: abi.VerdictPermanent},
	{name: "101", status: 101, verdict: abi.VerdictPermanent},
	{name: "no status, body error", status: 0, body: `{"error": "x"}`, verdict: abi.VerdictRetryable, reasonHas: `body field "error"`},
	{name: "no status, body error permanent", status: 0, body: `{"error": "x"}`, config: `{"body_errors": "permanent"}`, verdict: abi.VerdictPermanent},
	{name: "no status, clean body", status: 0, body: `{"ok": true}`, verdict: abi.VerdictSuccess, reasonHas: "no status"},
	{name: "no status, no body", status: 0, verdict: abi.VerdictSuccess},
	{name: "no status, 0 listed", status: 0, body: `{"error": "x"}`, config: `{"success_statuses": [409]}`, verdict: abi.VerdictRetryable},
}

func classifyInput(status int32, body, config string) abi.Input {
	return abi.Input{Route: "orders", MessageID: "m1", Attempt: 1, Target: "orders-api",
		ResponseStatus: status, ResponseBody: []byte(body), Config: []byte(config),
		ResponseHeaders: map[string]string{"Content-Type": "application/json"}}
}

func TestClassifyJSONError(t *testing.T) {
	m := load(t, "classify-json-error")
	for _, tt := range classifyCases {
		t.Run(tt.name, func(t *testing.T) {
			in := classifyInput(tt.status, tt.body, tt.config)
			d, _, err := m.Classify(context.Background(), &in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Verdict != tt.verdict {
				t.Errorf("verdict = %q, want %q (reason %q)", d.Verdict, tt.verdict, d.Reason)
			}
			if d.Reason == "" || !strings.Contains(d.Reason, tt.reasonHas) {
				t.Errorf("reason %q does not contain %q", d.Reason, tt.reasonHas)
			}
			if len(d.Reason) > 200 {
				t.Errorf("reason of %d bytes: the snippet is not bounded", len(d.Reason))
			}
		})
	}
}

// TestClassifyJSONErrorOnEngine runs the same cases through the host's
// engine, fuel-metered under the default limits, as the runtime calls the
// module: every decision within budget, and the same fuel for the same
// input.
func TestClassifyJSONErrorOnEngine(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var fuel []int64
	e, err := engine.New(ctx, engine.Options{PoolSize: 1, CacheDir: filepath.Join(os.TempDir(), "breakwater-engine-test-cache"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnCall: func(r engine.CallReport) { mu.Lock(); fuel = append(fuel, r.Fuel); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	wasm, err := os.ReadFile(filepath.Join(modulesDir, "classify-json-error.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.DryRun(ctx, wasm, engine.Limits{})
	if err != nil || !reflect.DeepEqual(info.Kinds, []engine.Kind{engine.KindClassify}) {
		t.Fatalf("dry run: %+v, %v", info, err)
	}
	m, err := e.Load(ctx, engine.LoadSpec{Name: "classify-json-error", Version: "1", Wasm: wasm})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	for _, tt := range classifyCases {
		t.Run(tt.name, func(t *testing.T) {
			in := classifyInput(tt.status, tt.body, tt.config)
			mu.Lock()
			fuel = fuel[:0]
			mu.Unlock()
			for range 2 {
				d, err := engine.Decide[abi.ClassifyDecision](ctx, m, engine.KindClassify, &in, engine.Limits{})
				if err != nil {
					t.Fatal(err)
				}
				if d.Verdict != tt.verdict || !strings.Contains(d.Reason, tt.reasonHas) {
					t.Errorf("got %+v, want verdict %q with reason containing %q", d, tt.verdict, tt.reasonHas)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(fuel) != 2 || fuel[0] <= 0 || fuel[0] >= engine.DefaultLimits().Fuel {
				t.Errorf("fuel %v: want two calls within the default budget of %d", fuel, engine.DefaultLimits().Fuel)
			}
		})
	}
}
