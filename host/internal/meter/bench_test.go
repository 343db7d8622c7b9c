package meter

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// BenchmarkComputeHeavy runs the busy loop (10^6 iterations of arithmetic)
// plain, fuel-metered with the timer deadline, and plain under wazero's
// WithCloseOnContextDone. Compare ns/op:
//
//	go test -run '^$' -bench ComputeHeavy -count 5 ./host/meter
func BenchmarkComputeHeavy(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	b.Run("plain", func(b *testing.B) {
		fn := instantiate(b, load(b, "arith.wasm")).ExportedFunction("busy")
		b.ResetTimer()
		for range b.N {
			if _, err := fn.Call(ctx, n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fuel+deadline", func(b *testing.B) {
		mod := metered(b, "arith.wasm", Options{})
		fn := mod.ExportedFunction("busy")
		b.ResetTimer()
		for range b.N {
			cctx, c, _ := Begin(ctx, mod, 1<<40, time.Now().Add(time.Minute))
			_, err := fn.Call(cctx, n)
			if _, err := c.End(err); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("close-on-context-done", func(b *testing.B) {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true))
		defer rt.Close(ctx)
		mod, err := rt.Instantiate(ctx, load(b, "arith.wasm"))
		if err != nil {
			b.Fatal(err)
		}
		fn := mod.ExportedFunction("busy")
		b.ResetTimer()
		for range b.N {
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			_, err := fn.Call(cctx, n)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDeadlineOvershoot measures how long after a 10ms wall-time limit
// an infinite loop returns (target: limit + 5ms).
func BenchmarkDeadlineOvershoot(b *testing.B) {
	mod := metered(b, "arith.wasm", Options{})
	fn := mod.ExportedFunction("spin")
	const limit = 10 * time.Millisecond
	over := make([]time.Duration, 0, b.N)
	for range b.N {
		t0 := time.Now()
		ctx, c, _ := Begin(context.Background(), mod, 1<<62, t0.Add(limit))
		_, err := fn.Call(ctx)
		_, err = c.End(err)
		over = append(over, time.Since(t0)-limit)
		if err == nil {
			b.Fatal("infinite loop returned without error")
		}
	}
	slices.Sort(over)
	b.ReportMetric(float64(over[len(over)/2].Microseconds()), "overshoot-p50-µs")
	b.ReportMetric(float64(over[len(over)*99/100].Microseconds()), "overshoot-p99-µs")
}
