// Package engine runs policy modules: WebAssembly modules speaking ABI v1
// (docs/abi.md) on wazero's compiler engine, under per-call limits of fuel,
// wall time, memory pages and output size.
//
// A module is validated (Inspect), fuel-instrumented (host/meter), compiled
// once (with wazero's compilation cache, on disk when configured), and kept
// as a bounded pool of warm instances. Every call takes an instance,
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
// capped per call; bw_host.log logs structured messages.
package engine
