package engine

import (
	"errors"
	"fmt"
)

// ValidationError is a module refused before it runs: Rule names the check
// that failed, Detail what exactly was wrong and what to do.
type ValidationError struct {
	// Rule is one of: not_wasm; malformed (not well-formed WebAssembly);
	// invalid (fails WebAssembly validation); module_too_large,
	// too_many_functions, check_timeout (over a cap of Options);
	// forbidden_import, missing_export, bad_signature, no_kinds,
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
	Err     error
}

func (e *BreachError) Error() string {
	return fmt.Sprintf("module %s@%s %s: %s breach: %v", e.Module, e.Version, e.Export, e.Kind, e.Err)
}
func (e *BreachError) Unwrap() error { return e.Err }

// ErrQuarantined is returned (wrapped) by calls to a quarantined module.
var ErrQuarantined = errors.New("module quarantined after repeated breaches")

// ErrClosed is returned by calls to a closed module.
var ErrClosed = errors.New("module closed")
