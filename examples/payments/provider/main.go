// Command provider is the payments example's payment API: it captures
// payments after 100ms, except during its slow phases when every call takes
// 5s. The phases cycle so the circuit breaker can be seen opening and closing.
//
//	go run ./examples/payments/provider --fast 15s --slow 15s
package main

import (
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8491", "address to listen on")
	fast := flag.Duration("fast", 15*time.Second, "length of each healthy phase")
	slow := flag.Duration("slow", 15*time.Second, "length of each slow phase")
	fastLatency := flag.Duration("fast-latency", 100*time.Millisecond, "latency when healthy")
	slowLatency := flag.Duration("slow-latency", 5*time.Second, "latency when slow")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	start := time.Now()
	var seq atomic.Int64
	latency := func() (time.Duration, bool) {
		phase := time.Since(start) % (*fast + *slow)
		if phase < *fast {
			return *fastLatency, false
		}
		return *slowLatency, true
	}
	http.HandleFunc("/charge", func(w http.ResponseWriter, r *http.Request) {
		d, isSlow := latency()
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			log.Info("caller gave up", "slow_phase", isSlow)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"payment_id": seq.Add(1), "status": "captured"})
	})
	log.Info("payment provider listening", "addr", *listen, "fast", *fast, "slow", *slow)
	srv := &http.Server{Addr: *listen, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Error("provider stopped", "error", err)
		os.Exit(1)
	}
}
