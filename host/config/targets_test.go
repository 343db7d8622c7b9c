package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/config"
)

func TestTargetsAndCacheModes(t *testing.T) {
	cfg, err := config.Load(writeConfig(t, `
routes:
  - name: stock
    strategy: round_robin
    outlier: {consecutive_failures: 3}
    targets:
      - name: primary
        http: {url: http://127.0.0.1:9999/a}
      - name: replica
        nats: {subject: stock.replica}
    cache: {key: '{{.payload.sku}}', mode: read_through, fresh: 30s, stale_if_error: 1h}
  - name: single
    target:
      http: {url: http://127.0.0.1:9999/b}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Route("stock")
	if len(r.Targets) != 2 || r.Targets[0].Name != "primary" || r.Targets[0].HTTP.Method != "POST" || r.Targets[1].NATS.Subject != "stock.replica" {
		t.Errorf("targets: %+v", r.Targets)
	}
	if r.Strategy != config.StrategyRoundRobin || r.Outlier.ConsecutiveFailures != 3 || r.Outlier.BaseEjectionTime != 30*time.Second || r.Outlier.MaxEjectedPercent != 50 {
		t.Errorf("strategy %q, outlier %+v", r.Strategy, r.Outlier)
	}
	if r.Cache.Mode != config.CacheReadThrough || r.Cache.Fresh != 30*time.Second || r.Cache.StaleIfError != time.Hour {
		t.Errorf("cache: %+v", r.Cache)
	}
	s := cfg.Route("single")
	if len(s.Targets) != 1 || s.Targets[0].Name != "single" || s.Strategy != config.StrategyFailover {
		t.Errorf("a single target stays valid and becomes the one entry of targets: %+v", s.Targets)
	}
}

// Each mistake is an error naming the field and the file.
func TestTargetsAndCacheMistakes(t *testing.T) {
	const http = `{url: http://127.0.0.1:9999/a}`
	tests := []struct {
		name, route, field, why string
	}{
		{"target and targets", "target: {http: " + http + "}\n    targets: [{name: a, http: " + http + "}]", "routes[0].targets", "both target and targets"},
		{"empty list", "targets: []", "routes[0].targets", "empty: list at least one target"},
		{"duplicate names", "targets: [{name: a, http: " + http + "}, {name: a, http: " + http + "}]", "routes[0].targets[1].name", "already the name"},
		{"unnamed entry", "targets: [{http: " + http + "}]", "routes[0].targets[0].name", "needs a name"},
		{"entry without http or nats", "targets: [{name: a}]", "routes[0].targets[0]", "missing http or nats"},
		{"unknown strategy", "strategy: random\n    target: {http: " + http + "}", "routes[0].strategy", "not one of failover, round_robin, least_pending"},
		{"unknown cache mode", "target: {http: " + http + "}\n    cache: {key: k, mode: write_back}", "routes[0].cache.mode", "not fallback or read_through"},
		{"fresh zero", "target: {http: " + http + "}\n    cache: {key: k, mode: read_through}", "routes[0].cache.fresh", "must be positive"},
		{"fresh negative", "target: {http: " + http + "}\n    cache: {key: k, mode: read_through, fresh: -1s}", "routes[0].cache.fresh", "must be positive"},
		{"fresh in fallback mode", "target: {http: " + http + "}\n    cache: {key: k, fresh: 1s}", "routes[0].cache.fresh", "only for mode read_through"},
		{"stale below fresh", "target: {http: " + http + "}\n    cache: {key: k, mode: read_through, fresh: 1m, stale_if_error: 1s}", "routes[0].cache.stale_if_error", "at least fresh"},
		{"outlier percent", "target: {http: " + http + "}\n    outlier: {max_ejected_percent: 150}", "routes[0].outlier.max_ejected_percent", "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, "routes:\n  - name: r\n    "+tt.route+"\n")
			_, err := config.Load(path, nil)
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, "field "+tt.field) || !strings.Contains(msg, tt.why) || !strings.Contains(msg, path) {
				t.Errorf("error %q\nwant the field %q, %q and the file %s", msg, tt.field, tt.why, path)
			}
		})
	}
}
