package policies_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/engine"
)

// BenchmarkRetryDecision measures one retry decision on the host's engine
// (a warm pooled instance, fuel-metered, as the runtime serves), everything
// the host pays per call included: encoding the Input, bw_alloc, writing the
// input into guest memory, the bw_retry call (decoding, the policy, encoding
// in the guest), reading and decoding the RetryDecision. Besides ns/op it reports the median and 99th percentile of
// the per-call times (p50-ns, p99-ns).
//
// go-status-aware and go-exponential are Go-built modules (guest SDK);
// wat-constant is the minimal WAT module, the cost of the ABI round trip
// alone.
func BenchmarkRetryDecision(b *testing.B) {
	in := abi.Input{
		Route:        "orders",
		Subject:      "bw.in.orders",
		MessageID:    "01J9Z3W8K4",
		Attempt:      2,
		MaxAttempts:  5,
		ElapsedMs:    340,
		Error:        abi.AttemptError{Attempt: 2, AtUnixMs: 1_700_000_000_000, Kind: abi.ErrorStatus, Status: 503, Message: "service unavailable"},
		BreakerState: "closed",
		Headers:      map[string]string{"Content-Type": "application/json", "Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		Payload:      []byte(`{"order_id": 1234, "sku": "W-1", "qty": 2}`),
		Config:       []byte(`{"delay_ms": 100, "initial_ms": 100, "max_ms": 5000}`),
	}
	for _, module := range []string{"retry-status-aware", "retry-exponential", "retry-constant"} {
		name := "go-" + module[len("retry-"):]
		if module == "retry-constant" {
			name = "wat-constant"
		}
		b.Run(name, func(b *testing.B) {
			m := engineModule(b, newEngine(b, engine.Options{}), module, engine.LoadSpec{})
			ctx := context.Background()
			times := make([]time.Duration, 0, 1<<20)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				d, err := engine.Decide[abi.RetryDecision](ctx, m, engine.KindRetry, &in, engine.Limits{})
				times = append(times, time.Since(start))
				if err != nil || !d.Retry {
					b.Fatalf("Retry = %+v, %v", d, err)
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// BenchmarkClassifyDecision measures one classify decision of the
// classify-json-error module on the host's engine, like
// BenchmarkRetryDecision: a clean 200, a 200 whose JSON body reports an
// error, and a 503 (no body parsing).
func BenchmarkClassifyDecision(b *testing.B) {
	body := []byte(`{"order_id": 1234, "sku": "W-1", "qty": 2, "status": "accepted"}`)
	cases := []struct {
		name   string
		status int32
		body   []byte
		want   abi.Verdict
	}{
		{"200-clean", 200, body, abi.VerdictSuccess},
		{"200-body-error", 200, []byte(`{"order_id": 1234, "error": {"code": "QUOTA", "message": "quota exceeded"}}`), abi.VerdictRetryable},
		{"503", 503, []byte(`upstream unavailable`), abi.VerdictRetryable},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			in := abi.Input{
				Route:           "orders",
				Subject:         "bw.in.orders",
				MessageID:       "01J9Z3W8K4",
				Attempt:         1,
				MaxAttempts:     5,
				Target:          "orders-api",
				ResponseStatus:  c.status,
				ResponseHeaders: map[string]string{"Content-Type": "application/json"},
				ResponseBody:    c.body,
				Payload:         []byte(`{"order_id": 1234, "sku": "W-1", "qty": 2}`),
				Config:          []byte(`{"success_statuses": [409]}`),
			}
			m := engineModule(b, newEngine(b, engine.Options{}), "classify-json-error", engine.LoadSpec{})
			ctx := context.Background()
			times := make([]time.Duration, 0, 1<<20)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				d, err := engine.Decide[abi.ClassifyDecision](ctx, m, engine.KindClassify, &in, engine.Limits{})
				times = append(times, time.Since(start))
				if err != nil || d.Verdict != c.want {
					b.Fatalf("Classify = %+v, %v", d, err)
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
