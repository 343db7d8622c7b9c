// Package engine runs policy modules: WebAssembly modules speaking ABI v1
// (docs/abi.md) on wazero's compiler engine, under per-call limits of fuel,
// wall time, memory pages and output size.
//
// A module is validated (Inspect), fuel-instrumented (host/meter), compiled
// once (with wazero's compilation cache, on disk when configured), and kept
// as a bounded pool of warm instances. Validation refuses, with a
// *ValidationError: a module over Options.MaxModuleBytes (default 16 MiB)
// or Options.MaxFunctions (default 50,000) before any costly work; a binary
// that is malformed (Rule "malformed": strict decoding, so nothing is
// silently re-encoded into a valid module) or invalid (Rule "invalid":
// the original binary is validated before it is instrumented, so a
// dangling index cannot come to name what instrumentation adds); and a
// check (validation, instrumentation, compilation) running longer than
// Options.MaxCheckTime (default 30 s; Rule "check_timeout").
//
// Instantiation runs the start section, if any, under the start-up limits
// (initLimits: 20x the call limits, at least 2e9 fuel and 10 s), like
// _initialize: a start function that loops forever is stopped and the
// module refused (Rule "instantiate"). Every call takes an instance,
// encodes the input record, calls the kind's export under the limits and
// decodes the output. Any breach — fuel, deadline, memory, trap, bad or
// oversized output — is a typed *BreachError; the instance is discarded
// (replaced on demand) and the engine and every other module stay healthy.
// A module breaching QuarantineAfter times in a row is quarantined: its
// calls fail fast with ErrQuarantined until QuarantineFor has passed, then
// one call probes it again.
//
// The guest sees WASI preview 1 with no preopened directories, no
// environment, no arguments and no sockets; real clocks and a
// cryptographic random source; stdout and stderr go to the host log,
// capped per call; bw_host.log logs structured messages. Sleeps (WASI
// poll_oneoff, a Go guest's time.Sleep) count against the wall-time limit:
// each instance's nanosleep never sleeps past the deadline of its call in
// progress, after which the next fuel check reports a deadline breach.
//
// A breach is classified exactly where it can be: a call whose memory.grow
// was refused (recorded by the instrumentation) is a memory breach, even
// when the guest then traps, or spends its fuel or time (a Go guest prints
// a stack trace first); then fuel, deadline, and otherwise a trap.
package engine
