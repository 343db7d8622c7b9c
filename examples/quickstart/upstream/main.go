// Command upstream is the quickstart's flaky downstream: a small HTTP price
// service whose error rate and latency are set by flags and can be changed
// while it runs, so the resilience runtime has something to protect against.
//
//	go run ./examples/quickstart/upstream --error-rate 0.3 --latency 50ms
//	curl -X PUT '127.0.0.1:8481/control?error_rate=1'    # now everything fails
//	curl -X PUT '127.0.0.1:8481/control?latency=3s'      # now everything is slow
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

type behaviour struct {
	mu        sync.Mutex
	errorRate float64
	latency   time.Duration
	status    int
}

func (b *behaviour) get() (float64, time.Duration, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.errorRate, b.latency, b.status
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8481", "address to listen on")
	b := &behaviour{}
	flag.Float64Var(&b.errorRate, "error-rate", 0.2, "fraction of requests that fail (0..1)")
	flag.DurationVar(&b.latency, "latency", 20*time.Millisecond, "latency added to every request")
	flag.IntVar(&b.status, "status", 503, "status of failed requests")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	mux := http.NewServeMux()
	mux.HandleFunc("/control", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			http.Error(w, "use PUT /control?error_rate=0.5&latency=100ms&status=503", http.StatusMethodNotAllowed)
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		q := r.URL.Query()
		if v := q.Get("error_rate"); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				http.Error(w, "error_rate must be a number in 0..1", http.StatusBadRequest)
				return
			}
			b.errorRate = f
		}
		if v := q.Get("latency"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				http.Error(w, "latency must be a duration like 100ms", http.StatusBadRequest)
				return
			}
			b.latency = d
		}
		if v := q.Get("status"); v != "" {
			s, err := strconv.Atoi(v)
			if err != nil || s < 400 || s > 599 {
				http.Error(w, "status must be 400..599", http.StatusBadRequest)
				return
			}
			b.status = s
		}
		fmt.Fprintf(w, "error_rate=%v latency=%v status=%d\n", b.errorRate, b.latency, b.status)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		rate, latency, status := b.get()
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
		if rand.Float64() < rate {
			log.Info("failing", "path", r.URL.Path, "status", status, "idempotency_key", r.Header.Get("Idempotency-Key"))
			http.Error(w, `{"error":"upstream is having a bad day"}`, status)
			return
		}
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		sku, _ := req["sku"].(string)
		resp := map[string]any{"sku": sku, "price": 10 + len(sku), "currency": "EUR", "served_at": time.Now().UTC().Format(time.RFC3339Nano)}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
		log.Info("served", "path", r.URL.Path, "sku", sku)
	})
	log.Info("flaky upstream listening", "addr", *listen, "error_rate", b.errorRate, "latency", b.latency)
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Error("upstream stopped", "error", err)
		os.Exit(1)
	}
}
