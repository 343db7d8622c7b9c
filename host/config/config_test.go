package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/breakwater-dev/breakwater/host/config"
)

const validRoutes = `
routes:
  - name: orders
    target:
      http:
        url: http://127.0.0.1:9999/orders
    cache:
      key: '{{.payload.id}}'
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "breakwater.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := config.Load(writeConfig(t, validRoutes), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Route("orders")
	if r == nil {
		t.Fatal("route orders missing")
	}
	if r.Timeout != config.DefaultTimeout || r.MaxAttempts != config.DefaultMaxAttempts || r.Target.HTTP.Method != "POST" ||
		r.Cache.TTL != config.DefaultCacheTTL || r.Target.Name != "orders" || r.Backoff != config.DefaultBackoff {
		t.Errorf("defaults not applied: %+v", r)
	}
	if cfg.NATS.Embedded.StoreDir == "" || cfg.HTTP.Listen != "127.0.0.1:8480" || cfg.Streams.AckWait != 30*time.Second {
		t.Errorf("global defaults not applied: %+v", cfg)
	}
}

func TestLoadOverrides(t *testing.T) {
	path := writeConfig(t, "http:\n  listen: 127.0.0.1:7000\nlog:\n  level: warn\n"+validRoutes)
	t.Setenv("BW_LOG_LEVEL", "debug")
	t.Setenv("BW_NATS_URL", "nats://10.0.0.1:4222")
	flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	flags.String("http.listen", "", "")
	if err := flags.Parse([]string{"--http.listen=127.0.0.1:7001"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, flags)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "debug" {
		t.Errorf("env did not override the file: log.level %q", cfg.Log.Level)
	}
	if cfg.NATS.URL != "nats://10.0.0.1:4222" {
		t.Errorf("env nats.url %q", cfg.NATS.URL)
	}
	if cfg.HTTP.Listen != "127.0.0.1:7001" {
		t.Errorf("flag did not override the file: http.listen %q", cfg.HTTP.Listen)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string // every fragment must be in the error
	}{
		{"unknown top-level field", "nats:\n  urll: x\n" + validRoutes, []string{"urll"}},
		{"unknown route field", strings.Replace(validRoutes, "    cache:", "    retries: 3\n    cache:", 1), []string{"retries"}},
		{"no routes", "log:\n  level: info\n", []string{"routes", "no routes configured"}},
		{"route without target", "routes:\n  - name: a\n", []string{"routes[0].target", "missing"}},
		{"bad route name", strings.Replace(validRoutes, "name: orders", "name: 'or.ders'", 1), []string{"routes[0].name", "or.ders"}},
		{"duplicate route", validRoutes + "  - name: orders\n    target:\n      nats:\n        subject: svc.orders\n", []string{"routes[1].name", "already"}},
		{"bad url", strings.Replace(validRoutes, "http://127.0.0.1:9999/orders", "ftp://x", 1), []string{"routes[0].target.http.url", "ftp://x"}},
		{"bad method", strings.Replace(validRoutes, "      http:\n", "      http:\n        method: FETCH\n", 1), []string{"routes[0].target.http.method", "FETCH"}},
		{"bad duration", strings.Replace(validRoutes, "    cache:", "    timeout: soon\n    cache:", 1), []string{"routes[0].timeout", "invalid duration"}},
		{"timeout beyond ack wait", strings.Replace(validRoutes, "    cache:", "    timeout: 1m\n    cache:", 1), []string{"routes[0].timeout", "ack_wait"}},
		{"bad cache template", strings.Replace(validRoutes, "'{{.payload.id}}'", "'{{.payload.id'", 1), []string{"routes[0].cache.key"}},
		{"bad log level", "log:\n  level: loud\n" + validRoutes, []string{"log.level", "loud"}},
		{"bad yaml", "routes: [\n", []string{"breakwater.yaml"}},
		{"users without an admin identity", "nats:\n  embedded:\n    users:\n      - {user: shop, password: x, role: producer}\n" + validRoutes, []string{"nats.user", "admin"}},
		{"bad role", "nats:\n  user: a\n  password: b\n  embedded:\n    users:\n      - {user: a, password: b, role: root}\n" + validRoutes, []string{"users[0].role", "root"}},
		{"bad breaker", strings.Replace(validRoutes, "        url: http://127.0.0.1:9999/orders\n", "        url: http://127.0.0.1:9999/orders\n      breaker:\n        failure_rate: 2\n", 1), []string{"failure_rate"}},
		{"two targets", strings.Replace(validRoutes, "      http:\n", "      nats:\n        subject: a.b\n      http:\n", 1), []string{"only one"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.body)
			_, err := config.Load(path, nil)
			if err == nil {
				t.Fatalf("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error does not name the file %s: %v", path, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("error %v", err)
	}
}

func TestFieldErrorIsTyped(t *testing.T) {
	_, err := config.Load(writeConfig(t, "log:\n  format: xml\n"+validRoutes), nil)
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Field != "log.format" {
		t.Fatalf("want *FieldError for log.format, got %v", err)
	}
}
