package engine

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/policy"
)

// reportLatency adds p50/p99 of per-call durations.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkRetryDecision: per-decision overhead, ABI encoding included, of
// the native Go policy, a minimal WAT module and a Go-guest module, each
// unmetered and fuel-metered.
//
//	go test -run '^$' -bench RetryDecision ./host/engine
func BenchmarkRetryDecision(b *testing.B) {
	ctx := context.Background()
	in := SampleInput()
	in.Error = abi.AttemptError{Attempt: 1, Kind: abi.ErrorStatus, Status: 503, Message: "503"}
	b.Run("native", func(b *testing.B) {
		p := &policy.BackoffRetry{Initial: 200 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.5}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			if _, err := p.DecideRetry(ctx, in); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		reportLatency(b, lat)
	})
	for _, mod := range []struct{ name, file string }{{"wat-constant", "retry-constant"}, {"go-status-aware", "retry-status-aware"}} {
		for _, unmetered := range []bool{true, false} {
			label := mod.name + "/metered"
			if unmetered {
				label = mod.name + "/unmetered"
			}
			b.Run(label, func(b *testing.B) {
				e := newEngine(b, Options{PoolSize: 1})
				m, err := e.Load(ctx, LoadSpec{Name: mod.name, Version: "1", Wasm: module(b, mod.file), Unmetered: unmetered})
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close(ctx)
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for range b.N {
					t0 := time.Now()
					if _, err := Decide[abi.RetryDecision](ctx, m, KindRetry, in, Limits{}); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				reportLatency(b, lat)
			})
		}
	}
}

// BenchmarkComputeHeavyGuest: the busy_loop fixture (10^6 iterations per
// decision), unmetered vs metered, through the whole engine.
func BenchmarkComputeHeavyGuest(b *testing.B) {
	ctx := context.Background()
	for _, unmetered := range []bool{true, false} {
		name := "metered"
		if unmetered {
			name = "unmetered"
		}
		b.Run(name, func(b *testing.B) {
			e := newEngine(b, Options{PoolSize: 1})
			m, err := e.Load(ctx, LoadSpec{Name: "busy", Version: "1", Wasm: fixture(b, "busy_loop"), Unmetered: unmetered, Limits: Limits{Fuel: 1 << 40, WallTime: time.Minute}})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(ctx)
			b.ResetTimer()
			for range b.N {
				if _, err := Decide[abi.RetryDecision](ctx, m, KindRetry, SampleInput(), Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInstance: creating a warm instance (instantiate, _initialize,
// ABI check, warm-up), and the memory each keeps.
func BenchmarkInstance(b *testing.B) {
	ctx := context.Background()
	for _, mod := range []struct{ name, file string }{{"wat-constant", "retry-constant"}, {"go-status-aware", "retry-status-aware"}} {
		b.Run(mod.name, func(b *testing.B) {
			e := newEngine(b, Options{PoolSize: 1})
			m, err := e.Load(ctx, LoadSpec{Name: mod.name, Version: "1", Wasm: module(b, mod.file)})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(ctx)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			keep := make([]*instance, 0, b.N)
			b.ResetTimer()
			for range b.N {
				inst, err := m.newInstance(ctx)
				if err != nil {
					b.Fatal(err)
				}
				keep = append(keep, inst)
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			var guest uint64
			for _, inst := range keep {
				guest += uint64(inst.mem.Size())
			}
			b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(len(keep))/1024, "host-heap-KiB/instance")
			b.ReportMetric(float64(guest)/float64(len(keep))/1024, "guest-mem-KiB/instance")
			for _, inst := range keep {
				inst.mod.Close(ctx)
			}
		})
	}
}

// BenchmarkWallTimeLimit: how long after a 10ms limit an infinite loop
// returns through the engine (target: limit + 5ms).
func BenchmarkWallTimeLimit(b *testing.B) {
	ctx := context.Background()
	e := newEngine(b, Options{PoolSize: 1, QuarantineAfter: 1 << 30})
	m, err := e.Load(ctx, LoadSpec{Name: "loop", Version: "1", Wasm: fixture(b, "infinite_loop"), Limits: Limits{Fuel: 1 << 50, WallTime: 10 * time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(ctx)
	inst, _ := m.acquire(ctx) // keep instance creation out of the timing
	m.release(inst)
	over := make([]time.Duration, 0, b.N)
	for range b.N {
		inst, _ := m.acquire(ctx)
		m.release(inst)
		t0 := time.Now()
		_, err := Decide[abi.RetryDecision](ctx, m, KindRetry, SampleInput(), Limits{})
		over = append(over, time.Since(t0)-10*time.Millisecond)
		if err == nil {
			b.Fatal("no breach")
		}
	}
	slices.Sort(over)
	b.ReportMetric(float64(over[len(over)/2].Microseconds()), "overshoot-p50-µs")
	b.ReportMetric(float64(over[len(over)*99/100].Microseconds()), "overshoot-p99-µs")
}
