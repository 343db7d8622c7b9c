package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/host/topology"
)

func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Ready(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	return mux
}

// Ready reports nil when the instance can do its work: NATS connected, the
// streams present, every route consuming.
func (s *Service) Ready(ctx context.Context) error {
	if s.nc.Status() != nats.CONNECTED {
		return errors.New("nats: " + s.nc.Status().String())
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, name := range []string{topology.StreamIn, topology.StreamOut, topology.StreamDLQ} {
		if _, err := s.js.Stream(ctx, name); err != nil {
			return errors.New("stream " + name + ": " + err.Error())
		}
	}
	return s.pipe.Ready()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
