// Command runtime is the Breakwater binary: `runtime serve` runs the
// resilience runtime; the other commands are the operator CLI (dead letters,
// and more as the control plane grows).
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
