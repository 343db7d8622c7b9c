package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/testkit"
)

// TestClosedConnectionEndsRun (item 3): if the server closes one of the
// runtime's connections for good anyway (here: a control line over the
// server's limit, which a poison subject used to cause), Run returns a
// clear error, so the process exits and a supervisor restarts it, instead
// of sitting alive and useless.
func TestClosedConnectionEndsRun(t *testing.T) {
	up := testkit.NewUpstream(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "breakwater.yaml")
	yaml := fmt.Sprintf("nats:\n  embedded:\n    port: -1\n    store_dir: %s\nhttp:\n  listen: \"\"\nroutes:\n  - name: r\n    target:\n      http:\n        url: %s\n", filepath.Join(dir, "js"), up.URL)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	// Bypass every validation: publish a subject longer than the server's
	// control-line limit on the worker connection.
	_ = s.links.worker.Publish("bw.reply."+strings.Repeat("x", 5000), nil)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed for good") || !strings.Contains(err.Error(), "supervisor") {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(20 * time.Second):
		s.Close()
		t.Fatal("Run went on with a closed connection")
	}
}
