package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRouteCommands: route apply refuses an invalid file whole, naming the
// field; applies a valid one; list, show (text and JSON) and rm (refused
// without --force) work on the stored routes.
func TestRouteCommands(t *testing.T) {
	var failing atomic.Bool
	up := upstream(t, &failing)
	cli := startService(t, "  - name: static\n    target: {http: {url: "+up.URL+"}}\n", "")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "routes:\n  - name: live\n    target: {http: {url: "+up.URL+"}}\n  - name: broken\n    target: {http: {url: 'ftp://x'}}\n")
	if out, err := runCLI(t, "route", "apply", "-f", bad, "-c", cli); err == nil || !strings.Contains(err.Error(), "routes[1].target.http.url") {
		t.Fatalf("invalid file: %v\n%s", err, out)
	}
	if out, _ := runCLI(t, "route", "list", "-c", cli); strings.Contains(out, "live") {
		t.Fatalf("a refused file was partly applied:\n%s", out)
	}
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, "routes:\n  - name: live\n    target: {http: {url: "+up.URL+"}}\n    max_attempts: 2\n")
	if out, err := runCLI(t, "route", "apply", "-f", good, "-c", cli); err != nil || !strings.Contains(out, "applied route live") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	out, err := runCLI(t, "route", "list", "-c", cli)
	if err != nil || !strings.Contains(out, "live") || !strings.Contains(out, "static") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = runCLI(t, "route", "show", "live", "-o", "json", "-c", cli)
	var doc map[string]any
	if err != nil || json.Unmarshal([]byte(out), &doc) != nil || doc["name"] != "live" || doc["max_attempts"] != float64(2) {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "route", "rm", "live", "-c", cli); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("rm without --force: %v", err)
	}
	if out, err := runCLI(t, "route", "rm", "live", "--force", "-c", cli); err != nil || !strings.Contains(out, "removed route live") {
		t.Fatalf("rm: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "route", "show", "live", "-c", cli); exitCode(err) != exitNotFound {
		t.Fatalf("show after rm: %v", err)
	}
}
