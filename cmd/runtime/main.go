// Command runtime is the Breakwater binary: `runtime serve` runs the
// resilience runtime; the other commands are the operator CLI (publish and
// call, dead letters, in-flight messages, flags, modules). Exit codes are
// in exit.go and docs/cli.md.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	err := newRootCmd().Execute()
	if err != nil {
		var ce *codeError
		if !errors.As(err, &ce) || ce.msg != "" {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
	}
	os.Exit(exitCode(err))
}
