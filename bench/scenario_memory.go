package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/breakwater-dev/breakwater/bench/internal/harness"
)

// Memory: the resident set of a runtime process with 10 idle routes using
// native policies, and with 10 routes each naming its own copy of the Go
// guest retry-status-aware; the difference over 10 is what one loaded Go
// guest costs: its compiled code and its warm instance (host/engine's
// benchmarks measure the instance alone: about 3.3 MiB of guest memory
// and 4.4 MiB of host heap).
func memoryScenarios() []harness.Scenario {
	return []harness.Scenario{{
		Name:   "memory",
		Title:  "Memory: RSS with 10 idle routes, native and with Go-guest modules",
		Rounds: 1, Warmup: 0,
		Setup: memorySetup,
	}}
}

func memorySetup(ctx context.Context, quick bool) ([]harness.System, func(), error) {
	e, err := newEnv(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	root, err := repoRoot()
	if err != nil {
		e.close()
		return nil, nil, err
	}
	wasm, err := os.ReadFile(filepath.Join(root, "modules", "retry-status-aware.wasm"))
	if err != nil {
		e.close()
		return nil, nil, err
	}
	modDir := filepath.Join(e.dir, "modules")
	if err := os.MkdirAll(modDir, 0o755); err != nil {
		e.close()
		return nil, nil, err
	}
	var native, guest strings.Builder
	for i := range 10 {
		if err := os.WriteFile(filepath.Join(modDir, fmt.Sprintf("m%d.wasm", i)), wasm, 0o644); err != nil {
			e.close()
			return nil, nil, err
		}
		route := fmt.Sprintf("  - name: r%d\n    target:\n      http:\n        url: %s\n", i, e.up.URL)
		native.WriteString(route)
		guest.WriteString(route + fmt.Sprintf("    modules:\n      retry:\n        name: m%d\n", i))
	}
	write := func(name, routes string) (string, error) {
		path := filepath.Join(e.dir, name)
		return path, os.WriteFile(path, []byte(fmt.Sprintf(`nats:
  url: %s
http:
  listen: ""
log:
  level: info
modules:
  dir: %s
  cache_dir: %s
routes:
%s`, e.srv.ClientURL(), modDir, filepath.Join(e.dir, "wasm-cache"), routes)), 0o644)
	}
	nativeCfg, err := write("native.yaml", native.String())
	if err != nil {
		e.close()
		return nil, nil, err
	}
	guestCfg, err := write("guest.yaml", guest.String())
	if err != nil {
		e.close()
		return nil, nil, err
	}
	rss := func(ctx context.Context, cfg string) (float64, error) {
		p, err := startRuntime(ctx, cfg)
		if err != nil {
			return 0, err
		}
		defer p.kill()
		time.Sleep(time.Second) // settle: the last allocations of start-up
		return p.rssBytes()
	}
	systems := []harness.System{
		{Name: "native-10-routes", Run: func(ctx context.Context) (harness.Sample, error) {
			b, err := rss(ctx, nativeCfg)
			return harness.Sample{Extra: map[string]float64{"rss_mb": b / (1 << 20)}}, err
		}},
		{Name: "go-guest-10-routes", Run: func(ctx context.Context) (harness.Sample, error) {
			n, err := rss(ctx, nativeCfg)
			if err != nil {
				return harness.Sample{}, err
			}
			g, err := rss(ctx, guestCfg)
			return harness.Sample{Extra: map[string]float64{"rss_mb": g / (1 << 20), "per_loaded_module_mb": (g - n) / 10 / (1 << 20)}}, err
		}},
	}
	return systems, e.close, nil
}
