package testkit

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds, at most for timeout, and fails the
// test naming what it waited for when it never does. It polls every 10 ms
// for the first second, then every 50 ms.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Poll is Eventually without the test: it reports whether cond held
// within timeout.
func Poll(timeout time.Duration, cond func() bool) bool {
	start := time.Now()
	for {
		if cond() {
			return true
		}
		elapsed := time.Since(start)
		if elapsed >= timeout {
			return false
		}
		step := 10 * time.Millisecond
		if elapsed > time.Second {
			step = 50 * time.Millisecond
		}
		time.Sleep(min(step, timeout-elapsed))
	}
}
