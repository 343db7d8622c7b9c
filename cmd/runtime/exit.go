package main

import (
	"errors"
	"fmt"

	"github.com/breakwater-dev/breakwater/host/headers"
)

// Exit codes of the runtime command (docs/cli.md). Every error not listed
// here (usage, config, connection, a refused operation) exits 1.
const (
	exitOK        = 0
	exitError     = 1 // usage, config, connection, refused (e.g. without --force)
	exitCached    = 3 // outcome cached: the last-known-good value, not the target's answer
	exitStub      = 4 // outcome stub: a stand-in answer
	exitDead      = 5 // outcome dead: dead-lettered
	exitNoOutcome = 6 // no outcome within --wait / --timeout (it may still come)
	exitCallError = 7 // runtime call: the runtime answered with an error (no answer, cache or stub)
	exitNotFound  = 8 // inspect: not in flight; dlq show: no such dead letter
)

// exitCodesHelp is shown in the help of the commands that use them.
const exitCodesHelp = `Exit codes: 0 ok, 1 usage/config/connection error, 3 cached, 4 stub,
5 dead, 6 no outcome within the wait, 7 error reply (call), 8 not found.`

// codeError carries an exit code. A codeError with an empty message has
// said everything on stdout already.
type codeError struct {
	code int
	msg  string
}

func (e *codeError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.msg
}

func withCode(code int, format string, args ...any) error {
	return &codeError{code: code, msg: fmt.Sprintf(format, args...)}
}

// exitCode maps a command's error to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	return exitError
}

// outcomeCode is the exit code of an outcome.
func outcomeCode(outcome string) int {
	switch outcome {
	case headers.OutcomeOK:
		return exitOK
	case headers.OutcomeCached:
		return exitCached
	case headers.OutcomeStub:
		return exitStub
	case headers.OutcomeDead:
		return exitDead
	case headers.OutcomeError:
		return exitCallError
	}
	return exitError
}

// outcomeErr is nil for ok, else a codeError that says the outcome.
func outcomeErr(outcome string) error {
	code := outcomeCode(outcome)
	if code == exitOK {
		return nil
	}
	return &codeError{code: code, msg: fmt.Sprintf("outcome %s (exit %d)", outcome, code)}
}
