// Package meter gives WebAssembly modules run by wazero (which has no fuel
// of its own) a deterministic instruction budget and a wall-time limit, by
// rewriting the module binary at load time.
//
// Validation comes first. The rewrite appends a type, a function import and
// globals at exactly the indices a dangling reference in an invalid module
// would name (a global.set 0 in a module without globals would set the fuel
// counter), and re-encodes what it reads, so it must never see an invalid or
// malformed module. InstrumentContext therefore:
//
//   - reads the binary strictly: a LEB128 number longer than its type
//     allows or with unused bits set, a section or vector whose entry count
//     does not match its contents, trailing bytes, unknown or misordered
//     sections, a function/code count mismatch are refused as RuleMalformed;
//   - refuses a module with more than Options.MaxFunctions functions
//     (RuleTooManyFunctions) before anything costly;
//   - refuses, while rewriting, any function, global or type index past the
//     end of its index space, and a constant expression reading anything but
//     an imported immutable global (RuleInvalid): defence in depth;
//   - refuses SIMD, threads, exception handling, imported memory
//     (RuleUnsupported);
//   - and only then validates the original binary with Validate: wazero's
//     interpreter compiles it as written (RuleInvalid if refused). For a Go
//     guest (retry-status-aware.wasm, 3.3 MB, 2,182 functions) that costs
//     about 90 ms on this machine, next to 14 ms for the rewrite; the
//     engine's compile of the instrumented module takes about a second.
//
// Every refusal is an *InstrumentError whose Rule says which. The
// WebAssembly core spec suite (v1 and v2, as wazero ships it) checks this:
// every binary assert_invalid and assert_malformed module is refused, and
// every other module the meter supports behaves the same instrumented (see
// TestSpecSuite).
//
// Instrument appends a mutable i64 global, exported as "bw_fuel", imports
// one host function, bw_meter.refill (appended after the module's own
// imports; defined function indices shift by one and every reference —
// calls, ref.func, exports, elements, start — is rewritten), and at the
// entry of every function and the header of every loop inserts a charge of
// that region's static cost:
//
//	global.get $fuel; i64.const COST; i64.sub; global.set $fuel
//	global.get $fuel; i64.const 0; i64.lt_s; if; call $refill; end
//
// A region is a function body or a loop body; its COST is the number of
// instructions directly inside it (nested blocks and ifs included, nested
// loops excluded: they charge for themselves on every iteration). Every
// executed instruction is paid for at least once per entry into its
// innermost region, so unbounded execution (a loop or a recursion) keeps
// paying, and the same input always uses the same fuel.
//
// Fuel is handed to the guest in slices of SliceSize. When a slice runs out
// the guest calls refill, which accounts the slice and either stops the
// call — budget spent (ErrFuelExhausted) or wall-time limit passed
// (ErrDeadlineExceeded) — or hands out the next slice. The fuel check thus
// doubles as the deadline check, and the regular return to Go also lets the
// Go runtime preempt the goroutine (stop-the-world for GC cannot wait on a
// guest spinning in compiled code).
//
// Measured on this machine (go test -run '^$' -bench . ./host/meter):
// a loop of 10^6 iterations costs 1.65 ms plain and 1.66 ms metered
// (about +1%); wazero's WithCloseOnContextDone(true) takes 24 ms on the same
// loop (14.6x). An infinite loop with a 10 ms limit returns 0.3 ms (p50),
// 0.8 ms (p99) after the limit.
//
// A first design wrote a deadline sentinel into the fuel global from a
// timer goroutine. It was rejected: a charge in flight overwrites the
// sentinel, and while the guest spins in compiled code a stop-the-world GC
// parks the timer goroutine, so the limit could be missed by seconds.
//
// Start sections run at instantiation, before any Begin: the fuel global
// starts at 0, so the start function's first charge calls refill, which
// finds the call armed by BeginInstantiate in the context given to wazero's
// InstantiateModule and binds the new instance's global to it. A start
// function thus runs under a budget and a deadline like any call (the
// engine gives it its start-up limits); instantiating an instrumented
// module with a start section outside BeginInstantiate fails with
// ErrNotMetered. refill meters the instance that called it (its mod
// argument), so modules calling each other each spend from their own
// global, all accounted to the one call. End empties every global it
// handed fuel to: instrumented code run outside a call cannot spend fuel
// left over.
//
// Sleeps: Call.Sleep is meant as the instance's nanosleep
// (wazero.ModuleConfig.WithNanosleep), which wazero's WASI poll_oneoff uses
// for relative clock subscriptions (a Go guest's time.Sleep). It never
// sleeps past the call's deadline (nor once the call's context is done);
// cut short, it empties the fuel globals, so the guest's next charge calls
// refill, which stops it with ErrDeadlineExceeded. (poll_oneoff's other
// wait, on stdin, does not block: the engine's stdin is empty.)
//
// MaxMemoryPages clamps the module's memory maximum, so memory.grow beyond
// it returns -1 in the guest instead of growing. Every memory.grow is
// followed by a few instructions (not charged) that record a -1 result in
// the exported i32 global "bw_grow_refused"; Call.MemoryRefused reports it
// after End, so a guest that hit its memory limit is known exactly, even
// when it goes on to spend its fuel or time (the Go runtime prints a stack
// trace for 12M+ fuel before it traps).
//
// Unsupported (rejected with an *InstrumentError, RuleUnsupported): SIMD,
// threads/atomics, exception handling, and imported memories.
package meter
