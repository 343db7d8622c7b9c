package service_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/embedded"
	"github.com/breakwater-dev/breakwater/host/service"
)

// TestStartFailsFastOnBusyPort (item 8): a second runtime on a busy port
// fails at once, naming the address, instead of waiting 30 s.
func TestStartFailsFastOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	addr := "127.0.0.1:" + strconv.Itoa(port)
	up := newUpstream(t, always(200))
	for name, yaml := range map[string]string{
		"nats port": fmt.Sprintf("nats:\n  embedded:\n    port: %d\n    store_dir: %s\nhttp:\n  listen: \"\"\nroutes:%s", port, t.TempDir(), routeYAML("r", up.URL, "")),
		"http port": fmt.Sprintf("nats:\n  embedded:\n    port: -1\n    store_dir: %s\nhttp:\n  listen: %s\nroutes:%s", t.TempDir(), addr, routeYAML("r", up.URL, "")),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := loadConfig(t, yaml)
			t0 := time.Now()
			svc, err := service.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				svc.Close()
				t.Fatal("started on a busy port")
			}
			if took := time.Since(t0); took > 2*time.Second || !strings.Contains(err.Error(), addr) {
				t.Errorf("after %v: %v (want an error naming %s within 2s)", took, err, addr)
			}
		})
	}
}

// TestStartHonoursCancel (item 8): a signal (ctx cancelled) during start-up
// ends it promptly, here while waiting for an external server.
func TestStartHonoursCancel(t *testing.T) {
	up := newUpstream(t, always(200))
	cfg := loadConfig(t, fmt.Sprintf("nats:\n  url: nats://127.0.0.1:%d\n  connect_timeout: 1m\nhttp:\n  listen: \"\"\nroutes:%s", freePort(t), routeYAML("r", up.URL, "")))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	t0 := time.Now()
	svc, err := service.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		svc.Close()
		t.Fatal("started without a server")
	}
	if took := time.Since(t0); took > 5*time.Second || !errors.Is(err, context.Canceled) {
		t.Errorf("after %v: %v (want context.Canceled soon after the cancel)", took, err)
	}
}

// TestStartWaitsForExternalNATS (item 8): containers start in any order;
// with the server down at first, start-up retries (a log line per attempt)
// and succeeds once it is up.
func TestStartWaitsForExternalNATS(t *testing.T) {
	port := freePort(t)
	up := newUpstream(t, always(200))
	cfg := loadConfig(t, fmt.Sprintf("nats:\n  url: nats://127.0.0.1:%d\n  connect_timeout: 30s\nhttp:\n  listen: \"\"\nroutes:%s", port, routeYAML("r", up.URL, "")))
	logs := &syncBuffer{}
	type result struct {
		svc *service.Service
		err error
	}
	done := make(chan result, 1)
	go func() {
		svc, err := service.Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)))
		done <- result{svc, err}
	}()
	waitUntil(t, "a retry is logged", func() bool { return strings.Contains(logs.String(), "NATS not reachable yet; retrying") })
	srv, err := embedded.Start(context.Background(), embedded.Options{Port: port, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("start after the server came up: %v", r.err)
		}
		r.svc.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("start did not finish within 30s of the server coming up")
	}
}

// TestStartGivesUpOnExternalNATS: after nats.connect_timeout, start-up fails
// with a clear error.
func TestStartGivesUpOnExternalNATS(t *testing.T) {
	up := newUpstream(t, always(200))
	cfg := loadConfig(t, fmt.Sprintf("nats:\n  url: nats://127.0.0.1:%d\n  connect_timeout: 1s\nhttp:\n  listen: \"\"\nroutes:%s", freePort(t), routeYAML("r", up.URL, "")))
	svc, err := service.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		svc.Close()
		t.Fatal("started without a server")
	}
	if !strings.Contains(err.Error(), "connect_timeout") || !strings.Contains(err.Error(), "attempts") {
		t.Errorf("error %v does not say what to check", err)
	}
}
