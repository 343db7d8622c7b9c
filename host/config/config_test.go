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
	if cfg.NATS.Embedded.StoreDir == "" || cfg.HTTP.Listen != "127.0.0.1:8480" || cfg.Streams.AckWait != 10*time.Second {
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
		// Negative numbers never wrap around into unsigned fields, and zero
		// or negative limits name the field.
		{"negative fuel", "modules:\n  limits:\n    fuel: -5\n" + validRoutes, []string{"modules.limits.fuel", "negative"}},
		{"negative memory pages", "modules:\n  limits:\n    memory_pages: -1\n" + validRoutes, []string{"memory_pages", "negative"}},
		{"negative wall time", "modules:\n  limits:\n    wall_time: -1ms\n" + validRoutes, []string{"modules.limits.wall_time", "positive"}},
		{"zero fuel", "modules:\n  limits:\n    fuel: 0\n" + validRoutes, []string{"modules.limits.fuel", "positive"}},
		{"route limit negative", strings.Replace(validRoutes, "    cache:", "    modules:\n      retry:\n        name: r\n        limits:\n          wall_time: -2s\n    cache:", 1), []string{"routes[0].modules.retry.limits.wall_time"}},
		{"negative out max age", "streams:\n  out_max_age: -1h\n" + validRoutes, []string{"streams.out_max_age", "negative"}},
		{"reserved stub header msg id", strings.Replace(validRoutes, "    cache:", "    stub:\n      payload: x\n      headers:\n        Nats-Msg-Id: forged\n    cache:", 1), []string{"routes[0].stub.headers", "Nats-Msg-Id"}},
		{"reserved stub header outcome", strings.Replace(validRoutes, "    cache:", "    stub:\n      payload: x\n      headers:\n        bw-outcome: ok\n    cache:", 1), []string{"routes[0].stub.headers", "Bw-"}},
		{"reply subjects reach the JS API", strings.Replace(validRoutes, "    cache:", "    reply_subjects: ['$JS.API.>']\n    cache:", 1), []string{"routes[0].reply_subjects[0]", "$JS.>"}},
		{"reply subjects reach dead letters", strings.Replace(validRoutes, "    cache:", "    reply_subjects: ['bw.*.orders']\n    cache:", 1), []string{"routes[0].reply_subjects[0]", "bw.in.>"}},
		{"reply subjects malformed", strings.Replace(validRoutes, "    cache:", "    reply_subjects: ['a..b']\n    cache:", 1), []string{"routes[0].reply_subjects[0]", "empty token"}},
		{"route name too long", strings.Replace(validRoutes, "name: orders", "name: "+strings.Repeat("o", 65), 1), []string{"routes[0].name", "at most 64"}},
		{"reserved route name", strings.Replace(validRoutes, "name: orders", "name: _invalid", 1), []string{"routes[0].name", "reserved"}},
		{"producer of unknown route", "nats:\n  user: a\n  password: b\n  embedded:\n    users:\n      - {user: a, password: b, role: admin}\n      - {user: p, password: q, role: producer, routes: [nope]}\n" + validRoutes, []string{"users[1].routes[0]", "nope"}},
		{"bad user name", "nats:\n  user: a\n  password: b\n  embedded:\n    users:\n      - {user: a, password: b, role: admin}\n      - {user: 'p.x', password: q, role: producer}\n" + validRoutes, []string{"users[1].user", "p.x"}},
		{"inbox prefix in producers' space", "nats:\n  inbox_prefix: _INBOX.bw\n" + validRoutes, []string{"nats.inbox_prefix", "_INBOX"}},
		{"worker credentials half set", "nats:\n  url: nats://127.0.0.1:4222\n  worker:\n    user: w\n" + validRoutes, []string{"nats.worker", "both"}},
		{"stub header not a name", strings.Replace(validRoutes, "    cache:", "    stub:\n      payload: x\n      headers:\n        'a b': v\n    cache:", 1), []string{"routes[0].stub.headers", "not a valid header name"}},
		{"reply subjects reach dead-letter originals", strings.Replace(validRoutes, "    cache:", "    reply_subjects: ['bw.dlqdata.>']\n    cache:", 1), []string{"routes[0].reply_subjects[0]", "bw.dlqdata.>"}},
		{"inbox prefix in the reply namespace", "nats:\n  inbox_prefix: bw.reply\n" + validRoutes, []string{"nats.inbox_prefix", "bw.>"}},
		{"max attempts too large", strings.Replace(validRoutes, "    cache:", "    max_attempts: 20000\n    cache:", 1), []string{"routes[0].max_attempts", "1..10000"}},
		{"bad trusted key", "modules:\n  trusted_keys: [nope]\n" + validRoutes, []string{"modules.trusted_keys[0]", "nkey"}},
		{"bad connect timeout", "nats:\n  connect_timeout: -1s\n" + validRoutes, []string{"nats.connect_timeout"}},
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
