package config

import (
	"os"
	"path/filepath"
	"time"
)

// Defaults applied before the file and environment are read.
var defaults = map[string]any{
	"nats.url":                     "",
	"nats.user":                    "",
	"nats.password":                "",
	"nats.worker.user":             "",
	"nats.worker.password":         "",
	"nats.replies.user":            "",
	"nats.replies.password":        "",
	"nats.inbox_prefix":            "_BW_INBOX",
	"nats.connect_timeout":         time.Minute,
	"nats.embedded.host":           "127.0.0.1",
	"nats.embedded.port":           4222,
	"nats.embedded.store_dir":      "",
	"nats.embedded.max_store":      int64(0),
	"http.listen":                  "127.0.0.1:8480",
	"log.level":                    "info",
	"log.format":                   "json",
	"streams.replicas":             1,
	"streams.duplicate_window":     2 * time.Minute,
	"streams.out_max_age":          24 * time.Hour,
	"streams.dlq_max_age":          time.Duration(0),
	"streams.ack_wait":             10 * time.Second,
	"streams.broker_timeout":       5 * time.Second,
	"streams.publish_max_pending":  4096,
	"streams.internal_retries":     20,
	"streams.internal_retry_delay": time.Second,
	"modules.dir":                  "./modules",
	"modules.cache_dir":            "",
	"modules.pool_size":            4,
	"modules.limits.fuel":          uint64(50_000_000),
	"modules.limits.wall_time":     50 * time.Millisecond,
	"modules.limits.memory_pages":  uint32(512),
	"modules.limits.output_bytes":  uint32(64 << 10),
	"modules.canary.window":        time.Minute,
	"modules.canary.margin":        0.05,
	"modules.canary.min_calls":     20,
	"decisions.max_age":            24 * time.Hour,
	"decisions.max_bytes":          int64(256 << 20),
	"decisions.sample":             0.0,
	"tracing.endpoint":             "",
	"tracing.sampling":             1.0,
	"tracing.service_name":         "breakwater",
}

// Route defaults, applied to every route field left at its zero value.
const (
	DefaultTimeout     = 2 * time.Second
	DefaultMaxAttempts = 5
	DefaultConcurrency = 64
	DefaultCacheTTL    = 10 * time.Minute
)

// DefaultBackoff is the native retry policy's default.
var DefaultBackoff = Backoff{Initial: 200 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.5}

// defaultStoreDir is the JetStream directory when none is configured.
func defaultStoreDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "breakwater", "jetstream")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "state", "breakwater", "jetstream")
	}
	return filepath.Join("data", "jetstream")
}

func (r *Route) applyDefaults() {
	if r.Target != (Target{}) {
		r.bothTargets = len(r.Targets) > 0
		if !r.bothTargets {
			r.singleTarget = true
			if r.Target.Name == "" {
				r.Target.Name = r.Name
			}
			r.Targets = []Target{r.Target}
		}
	}
	if r.Strategy == "" {
		r.Strategy = StrategyFailover
	}
	if o := r.Outlier; o != nil {
		if o.ConsecutiveFailures == 0 {
			o.ConsecutiveFailures = 5
		}
		if o.MinRequests == 0 {
			o.MinRequests = 10
		}
		if o.Window == 0 {
			o.Window = 10 * time.Second
		}
		if o.BaseEjectionTime == 0 {
			o.BaseEjectionTime = 30 * time.Second
		}
		if o.MaxEjectionTime == 0 {
			o.MaxEjectionTime = max(300*time.Second, o.BaseEjectionTime)
		}
		if o.MaxEjectedPercent == 0 {
			o.MaxEjectedPercent = 50
		}
	}
	if r.Cache.Key != "" && r.Cache.Mode == "" {
		r.Cache.Mode = CacheFallback
	}
	if r.ResponseHeaders == nil {
		r.ResponseHeaders = []string{"Content-Type"}
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultTimeout
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.Concurrency == 0 {
		r.Concurrency = DefaultConcurrency
	}
	if r.Backoff == (Backoff{}) {
		r.Backoff = DefaultBackoff
	}
	if r.Backoff.Initial == 0 {
		r.Backoff.Initial = DefaultBackoff.Initial
	}
	if r.Backoff.Max == 0 {
		r.Backoff.Max = DefaultBackoff.Max
	}
	if r.Backoff.Multiplier == 0 {
		r.Backoff.Multiplier = DefaultBackoff.Multiplier
	}
	if r.Cache.Key != "" && r.Cache.TTL == 0 {
		r.Cache.TTL = DefaultCacheTTL
	}
	if r.Cache.Key != "" && r.Cache.StaleIfError == 0 {
		r.Cache.StaleIfError = r.Cache.TTL
	}
	if r.Deadline == 0 {
		r.Deadline = min(r.Timeout*time.Duration(max(r.MaxAttempts, 1)), 10*time.Second)
	}
	for i := range r.Targets {
		t := &r.Targets[i]
		if b := t.Breaker; b != nil {
			if b.FailureThreshold == 0 {
				b.FailureThreshold = 5
			}
			if b.ResetTimeout == 0 {
				b.ResetTimeout = 30 * time.Second
			}
			if b.HalfOpenProbes == 0 {
				b.HalfOpenProbes = 1
			}
			if b.Window == 0 {
				b.Window = 10 * time.Second
			}
			if b.MinRequests == 0 {
				b.MinRequests = 20
			}
		}
		for _, rl := range []*RateLimit{t.RateLimit, r.RateLimit} {
			if rl != nil && rl.Burst == 0 {
				rl.Burst = max(1, int(rl.PerSecond))
			}
		}
		if h := t.HTTP; h != nil && h.Method == "" {
			h.Method = "POST"
		}
	}
	if r.Hedge != nil && r.Hedge.MaxAttempts == 0 {
		r.Hedge.MaxAttempts = 2
	}
}
