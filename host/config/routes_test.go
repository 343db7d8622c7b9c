package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/host/config"
)

// TestRouteDocumentsRoundTrip: the documents seeded from a config file
// parse back into the same routes.
func TestRouteDocumentsRoundTrip(t *testing.T) {
	cfg, err := config.Load(writeConfig(t, validRoutes+"    timeout: 1500ms\n    max_attempts: 4\n    forward_headers: ['X-*']\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := cfg.RouteDocuments()
	if err != nil || len(docs) != 1 {
		t.Fatalf("documents %d, %v", len(docs), err)
	}
	routes, err := cfg.ParseRoutes(docs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(routes, cfg.Routes) {
		t.Errorf("round trip:\n got %+v\nwant %+v", routes, cfg.Routes)
	}
}

// TestParseRoutesRefusesBadRoutes: a routes file with an invalid route is
// refused whole, naming the field.
func TestParseRoutesRefusesBadRoutes(t *testing.T) {
	cfg, err := config.LoadClient("", nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "routes.yaml")
	body := strings.Replace(validRoutes, "routes:", "routes:\n  - name: good\n    target: {nats: {subject: a.b}}", 1) + "    timeout: 5m\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := config.ReadRoutesFile(path)
	if err != nil || len(docs) != 2 {
		t.Fatalf("read: %d %v", len(docs), err)
	}
	if routes, err := cfg.ParseRoutes(docs); err == nil || !strings.Contains(err.Error(), "routes[1].timeout") || routes != nil {
		t.Errorf("want routes[1].timeout refused and nothing returned, got %v %v", routes, err)
	}
	if _, err := cfg.ParseRoutes([][]byte{[]byte("name: x\ntarget: {http: {url: 'http://a'}}\nretries: 3\n")}); err == nil || !strings.Contains(err.Error(), "retries") {
		t.Errorf("an unknown key was accepted: %v", err)
	}
}
