package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/host/internal/pipeline"
	"github.com/breakwater-dev/breakwater/host/topology"
)

func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		rep := s.Readiness(r.Context())
		code := http.StatusOK
		if rep.Status != "ready" {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, rep)
	})
	return mux
}

// StreamHealth is one stream as /readyz reports it.
type StreamHealth struct {
	Leader string `json:"leader,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Readiness is the /readyz answer: whether the instance can consume and
// publish, and why not.
type Readiness struct {
	Status string `json:"status"` // ready or not ready
	Reason string `json:"reason,omitempty"`
	NATS   string `json:"nats"`
	// Streams are the streams the work needs, with their leaders: a stream
	// without a leader (a cluster without quorum) takes no publish.
	Streams map[string]StreamHealth `json:"streams"`
	pipeline.Health
}

// Readiness reports whether the instance can do its work: its NATS
// connections up, BW_IN, BW_OUT and BW_DLQ answering with a leader, every
// route consuming, the last outcome publish through, the sync path
// subscribed.
func (s *Service) Readiness(ctx context.Context) Readiness {
	rep := Readiness{NATS: s.nc.Status().String(), Streams: map[string]StreamHealth{}}
	var reasons []error
	for _, nc := range s.links.all() {
		if nc.Status() != nats.CONNECTED {
			reasons = append(reasons, fmt.Errorf("nats connection %s: %s", nc.Opts.Name, nc.Status()))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, name := range []string{topology.StreamIn, topology.StreamOut, topology.StreamDLQ} {
		h := StreamHealth{}
		if st, err := s.js.Stream(ctx, name); err != nil {
			h.Error = err.Error()
		} else if info := st.CachedInfo(); info.Cluster != nil {
			if h.Leader = info.Cluster.Leader; h.Leader == "" {
				h.Error = "no leader"
			}
		}
		if h.Error != "" {
			reasons = append(reasons, fmt.Errorf("stream %s: %s", name, h.Error))
		}
		rep.Streams[name] = h
	}
	if s.pipe != nil {
		rep.Health = s.pipe.Health()
		if err := s.pipe.Ready(); err != nil {
			reasons = append(reasons, err)
		}
	}
	rep.Status = "ready"
	if err := errors.Join(reasons...); err != nil {
		rep.Status, rep.Reason = "not ready", err.Error()
	}
	return rep
}

// Ready reports nil when the instance can do its work (see Readiness).
func (s *Service) Ready(ctx context.Context) error {
	if rep := s.Readiness(ctx); rep.Status != "ready" {
		return errors.New(rep.Reason)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
