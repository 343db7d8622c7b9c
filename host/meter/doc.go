// Package meter gives WebAssembly modules run by wazero (which has no fuel
// of its own) a deterministic instruction budget and a wall-time limit, by
// rewriting the module binary at load time.
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
// MaxMemoryPages clamps the module's memory maximum, so memory.grow beyond
// it returns -1 in the guest instead of growing.
//
// Unsupported (rejected with an *InstrumentError): SIMD, threads/atomics,
// exception handling, and imported memories.
package meter
