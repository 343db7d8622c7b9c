package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/host/client"
	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/service"
)

// startService runs a service with routesYAML until the benchmark ends.
func startService(b *testing.B, routesYAML string) *service.Service {
	b.Helper()
	dir := b.TempDir()
	path := filepath.Join(dir, "bench.yaml")
	yaml := fmt.Sprintf("nats:\n  embedded:\n    port: -1\n    store_dir: %s\nhttp:\n  listen: \"\"\nlog:\n  level: error\nroutes:\n%s", filepath.Join(dir, "js"), routesYAML)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = svc.Run(ctx) }()
	b.Cleanup(func() { cancel(); wg.Wait() })
	for i := 0; i < 500 && svc.Ready(ctx) != nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if err := svc.Ready(ctx); err != nil {
		b.Fatal(err)
	}
	return svc
}

// percentiles reports p50/p99 of lat in ms.
func percentiles(b *testing.B, prefix string, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), prefix+"p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), prefix+"p99-µs")
}

// BenchmarkSyncOverhead compares a direct NATS request to a NATS service
// with the same request through Breakwater's sync path (bw.call.<route>,
// nats target): the difference is what Breakwater adds.
func BenchmarkSyncOverhead(b *testing.B) {
	svc := startService(b, `
  - name: echo
    target:
      nats:
        subject: svc.echo
    timeout: 1s
`)
	nc, err := nats.Connect(svc.NATSURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	c, err := client.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"id":"x"}`)
	n := max(b.N, 2000)
	direct := make([]time.Duration, 0, n)
	viaBW := make([]time.Duration, 0, n)
	b.ResetTimer()
	for range n {
		t0 := time.Now()
		if _, err := nc.Request("svc.echo", payload, time.Second); err != nil {
			b.Fatal(err)
		}
		direct = append(direct, time.Since(t0))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		t0 = time.Now()
		res, err := c.Call(ctx, "echo", payload)
		cancel()
		if err != nil || res.Outcome != "ok" {
			b.Fatalf("sync call: %v %+v", err, res)
		}
		viaBW = append(viaBW, time.Since(t0))
	}
	b.StopTimer()
	percentiles(b, "direct-", direct)
	percentiles(b, "breakwater-", viaBW)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCascade measures route B's sync latency with route A's target
// healthy and then hung (every call to it hangs until its timeout), in the
// same run: a hung target must hold only its own route's capacity.
func BenchmarkCascade(b *testing.B) {
	var hangA sync.Mutex
	hung := false
	release := make(chan struct{})
	targetA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangA.Lock()
		h := hung
		hangA.Unlock()
		if h {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = w.Write([]byte(`{"a":1}`))
	}))
	defer func() { close(release); targetA.Close() }()
	targetB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"b":1}`))
	}))
	defer targetB.Close()
	svc := startService(b, fmt.Sprintf(`
  - name: route_a
    target:
      http:
        url: %s
      bulkhead:
        max_concurrent: 8
    timeout: 500ms
    max_attempts: 1
    deadline: 600ms
  - name: route_b
    target:
      http:
        url: %s
      bulkhead:
        max_concurrent: 8
    timeout: 500ms
`, targetA.URL, targetB.URL))
	nc, err := nats.Connect(svc.NATSURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	c, _ := client.New(nc)
	n := max(b.N, 1000)
	measure := func() []time.Duration {
		// Route A gets steady load from 32 callers meanwhile.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					_, _ = c.Call(ctx, "route_a", []byte(`{}`))
					cancel()
				}
			}()
		}
		lat := make([]time.Duration, 0, n)
		for range n {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			t0 := time.Now()
			res, err := c.Call(ctx, "route_b", []byte(`{}`))
			cancel()
			if err != nil || res.Outcome != "ok" {
				b.Fatalf("route B failed: %v", err)
			}
			lat = append(lat, time.Since(t0))
		}
		close(stop)
		wg.Wait()
		return lat
	}
	b.ResetTimer()
	healthy := measure()
	hangA.Lock()
	hung = true
	hangA.Unlock()
	hungLat := measure()
	b.StopTimer()
	percentiles(b, "B-with-A-healthy-", healthy)
	percentiles(b, "B-with-A-hung-", hungLat)
	b.ReportMetric(0, "ns/op")
}
