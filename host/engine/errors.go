package engine

import (
	"errors"
	"fmt"
	"strings"
)

// ValidationError is a module refused before it runs: Rule names the check
// that failed, Detail what exactly was wrong and what to do.
type ValidationError struct {
	// Rule is one of: not_wasm; malformed (not well-formed WebAssembly);
	// invalid (fails WebAssembly validation); module_too_large,
	// too_many_functions, check_timeout (over a cap of Options);
	// forbidden_import, not_reactor (a WASI command: a Go guest built
	// without -buildmode=c-shared), missing_export, bad_signature, no_kinds,
	// abi_version; instrument (uses what metering refuses: SIMD, threads,
	// exceptions, imported memory, or more initial memory than allowed);
	// instantiate (including a start function over the start-up limits),
	// initialize; dry_run.
	Rule   string
	Detail string
	Err    error
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("module rejected (%s): %s", e.Rule, e.Detail)
}
func (e *ValidationError) Unwrap() error { return e.Err }

// BreachKind says which limit or rule a call broke.
type BreachKind string

// Breach kinds.
const (
	BreachFuel           BreachKind = "fuel"
	BreachDeadline       BreachKind = "deadline"
	BreachMemory         BreachKind = "memory"
	BreachTrap           BreachKind = "trap"
	BreachBadOutput      BreachKind = "bad_output"
	BreachOutputTooLarge BreachKind = "output_too_large"
	BreachABI            BreachKind = "abi"
)

// BreachError is a call that broke its limits or the ABI. The instance that
// made it has been discarded.
type BreachError struct {
	Kind    BreachKind
	Module  string
	Version string
	Export  string
	// Function is the guest function that was running when a trap hit,
	// the innermost one outside the Go runtime, named by the module's name
	// section ("" without one: build without -ldflags=-s to keep it).
	Function string
	// Panic is the message of a Go guest's panic behind a trap, from what
	// it printed to stderr ("" if it printed none).
	Panic string
	Err   error
}

func (e *BreachError) Error() string {
	where := ""
	if e.Function != "" {
		where = " in " + e.Function
	}
	if e.Panic != "" {
		return fmt.Sprintf("module %s@%s %s: %s breach%s: the guest panicked: %s (%v)", e.Module, e.Version, e.Export, e.Kind, where, e.Panic, firstLine(e.Err))
	}
	return fmt.Sprintf("module %s@%s %s: %s breach%s: %v", e.Module, e.Version, e.Export, e.Kind, where, e.Err)
}

// firstLine is an error's message without the stack trace wazero appends.
func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// guestFunction picks, from the wasm stack trace of a trap, the innermost
// frame that is the guest's own code: not the Go runtime's, nor the
// SDK's plumbing. Frames without a name ("$123") name nothing.
func guestFunction(err error) string {
	_, trace, ok := strings.Cut(err.Error(), "wasm stack trace:\n")
	if !ok {
		return ""
	}
	for _, frame := range strings.Split(trace, "\n") {
		frame = strings.TrimSpace(frame)
		if i := strings.IndexByte(frame, '('); i >= 0 {
			frame = frame[:i]
		}
		// wazero writes "<instance>.<function>"; instance names are
		// "name@version#n" and hold no '.' after the '#'.
		if i := strings.IndexByte(frame, '#'); i >= 0 {
			if j := strings.IndexByte(frame[i:], '.'); j >= 0 {
				frame = frame[i+j+1:]
			}
		} else {
			frame = strings.TrimPrefix(frame, ".")
		}
		if frame == "" || strings.HasPrefix(frame, "$") || !guestFrame(frame) {
			continue
		}
		return frame
	}
	return ""
}

// guestFrame reports whether a Go function name is the module's own code.
func guestFrame(fn string) bool {
	for _, p := range []string{"runtime.", "runtime/", "internal/", "syscall", "sync.", "sync/", "os.", "fmt.", "reflect.", "strconv.", "encoding/",
		"github.com/breakwater-dev/breakwater/guest-sdk", "_rt0", "wasm_pc_f_loop", "gcWriteBarrier", "callRet", "memeqbody", "cmpbody"} {
		if strings.HasPrefix(fn, p) {
			return false
		}
	}
	return true
}
func (e *BreachError) Unwrap() error { return e.Err }

// ErrQuarantined is returned (wrapped) by calls to a quarantined module.
var ErrQuarantined = errors.New("module quarantined after repeated breaches")

// ErrClosed is returned by calls to a closed module.
var ErrClosed = errors.New("module closed")
