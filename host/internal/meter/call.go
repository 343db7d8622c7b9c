package meter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Errors a metered call ends with.
var (
	ErrFuelExhausted    = errors.New("fuel exhausted")
	ErrDeadlineExceeded = errors.New("wall-time limit exceeded")
	// ErrNotMetered: instrumented code ran outside any metered call (an
	// instantiation with a start section not armed by BeginInstantiate).
	ErrNotMetered = errors.New("metered code ran outside a metered call")
)

// SliceSize is the fuel handed to the guest per refill. Between refills the
// guest runs without returning to Go, so it bounds how late a wall-time
// limit is noticed (about a millisecond of guest work) — and how long the Go
// runtime may wait to stop the world for a GC.
const SliceSize = 1 << 20

type callKey struct{}

// Call is one metered call in progress.
type Call struct {
	budget   int64
	deadline time.Time
	done     <-chan struct{} // the call's context
	charged  int64           // fuel used by the slices handed out before the current ones
	meters   []*fuelMeter    // the instances this call handed fuel to

	exhausted, expired, refused bool
	ended                       bool
	used                        int64 // once ended
}

// fuelMeter is one instance's fuel global during a call.
type fuelMeter struct {
	mod     api.Module
	fuel    api.MutableGlobal
	refused api.MutableGlobal // nil for modules instrumented before the grow tracking
	slice   int64             // fuel handed out for the current slice
}

// Register instantiates the host module the instrumented guests import
// (bw_meter.refill) in rt. Call it once per runtime, before instantiating
// instrumented modules.
func Register(ctx context.Context, rt wazero.Runtime) error {
	_, err := rt.NewHostModuleBuilder(RefillModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(refill), nil, nil).
		Export(RefillName).
		Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("meter: registering %s.%s: %w", RefillModule, RefillName, err)
	}
	return nil
}

func newCall(ctx context.Context, budget int64, deadline time.Time) (context.Context, *Call) {
	c := &Call{budget: budget, deadline: deadline, done: ctx.Done()}
	return context.WithValue(ctx, callKey{}, c), c
}

// Begin arms a metered call on mod: budget fuel and a wall-time limit at
// deadline (zero: none). Call the guest with the returned context (the
// refill host function finds the Call in it), then call End exactly once.
func Begin(ctx context.Context, mod api.Module, budget int64, deadline time.Time) (context.Context, *Call, error) {
	if _, ok := mod.ExportedGlobal(ExportName).(api.MutableGlobal); !ok {
		return nil, nil, fmt.Errorf("module %q is not metered (no exported mutable global %s)", mod.Name(), ExportName)
	}
	cctx, c := newCall(ctx, budget, deadline)
	fm := c.meter(mod)
	fm.slice = min(budget, SliceSize)
	fm.fuel.Set(uint64(fm.slice))
	if fm.refused != nil {
		fm.refused.Set(0) // a refusal before this call is not this call's
	}
	return cctx, c, nil
}

// BeginInstantiate arms a metered call for instantiating an instrumented
// module (its start function runs then): pass the returned context to
// wazero's InstantiateModule, then call End exactly once with its error.
// The instance is not known yet: its fuel global (0 until then) is bound at
// the start function's first charge, which finds it empty and refills.
func BeginInstantiate(ctx context.Context, budget int64, deadline time.Time) (context.Context, *Call) {
	return newCall(ctx, budget, deadline)
}

// meter finds or binds mod's fuel global; nil if mod is not metered.
func (c *Call) meter(mod api.Module) *fuelMeter {
	for _, fm := range c.meters {
		if fm.mod == mod {
			return fm
		}
	}
	fuel, ok := mod.ExportedGlobal(ExportName).(api.MutableGlobal)
	if !ok {
		return nil
	}
	fm := &fuelMeter{mod: mod, fuel: fuel}
	fm.refused, _ = mod.ExportedGlobal(GrowRefusedName).(api.MutableGlobal)
	c.meters = append(c.meters, fm)
	return fm
}

// refill is bw_meter.refill: the calling instance's slice ran out. It
// accounts the slice, stops the guest (by panicking, which wazero turns
// into the call's error) when the budget or the deadline is spent, else
// hands out the next slice. The caller (mod) is the instance whose global
// ran out: with modules calling each other each instance has its own.
func refill(ctx context.Context, mod api.Module, _ []uint64) {
	c, _ := ctx.Value(callKey{}).(*Call)
	if c == nil {
		panic(fmt.Errorf("%w: instantiate instrumented modules with a context from meter.BeginInstantiate", ErrNotMetered))
	}
	fm := c.meter(mod)
	if fm == nil {
		panic(fmt.Errorf("%w: module %q has no %s global", ErrNotMetered, mod.Name(), ExportName))
	}
	left := int64(fm.fuel.Get())
	c.charged += fm.slice - left
	fm.slice = 0
	fm.fuel.Set(0)
	if c.charged > c.budget {
		c.exhausted = true
		panic(ErrFuelExhausted)
	}
	if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		c.expired = true
		panic(ErrDeadlineExceeded)
	}
	fm.slice = min(SliceSize, c.budget-c.charged)
	fm.fuel.Set(uint64(fm.slice))
}

// Sleep is the call's nanosleep (wazero.ModuleConfig.WithNanosleep): a
// guest sleep (WASI poll_oneoff on a clock) counts against the wall-time
// limit. It sleeps ns nanoseconds, but not past the deadline nor once the
// call's context is done; when cut short by the deadline it empties the
// fuel globals, so the guest's next charge calls refill, which stops it
// with ErrDeadlineExceeded.
func (c *Call) Sleep(ns int64) {
	d := time.Duration(max(ns, 0))
	cut := false
	if !c.deadline.IsZero() {
		if left := time.Until(c.deadline); left < d {
			d, cut = max(left, 0), true
		}
	}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
		}
	}
	if cut {
		for _, fm := range c.meters {
			left := int64(fm.fuel.Get())
			fm.slice -= left // keeps charged + slice - global unchanged
			fm.fuel.Set(0)
		}
	}
}

// End returns the fuel the call used and how it ended: nil,
// ErrFuelExhausted or ErrDeadlineExceeded (wrapped), or callErr. The fuel
// globals are left empty, so instrumented code run outside a call fails
// with ErrNotMetered rather than spending fuel left over.
//
// End may be called again: it then returns the same fuel.
func (c *Call) End(callErr error) (used int64, err error) {
	if !c.ended {
		c.ended = true
		c.used = c.charged
		for _, fm := range c.meters {
			c.used += fm.slice - int64(fm.fuel.Get())
			fm.slice = 0
			fm.fuel.Set(0)
			if fm.refused != nil && fm.refused.Get() != 0 {
				c.refused = true
				fm.refused.Set(0)
			}
		}
	}
	used = c.used
	switch {
	case c.exhausted:
		return c.budget, fmt.Errorf("%w: the call needed more than its budget of %d", ErrFuelExhausted, c.budget)
	case c.expired:
		return used, fmt.Errorf("%w: still running at the deadline (%d fuel used)", ErrDeadlineExceeded, used)
	}
	return used, callErr
}

// MemoryRefused reports, after End, whether a memory.grow of the call was
// refused (returned -1): the guest hit its memory limit. It is exact, not a
// heuristic: instrumentation records every memory.grow's result.
func (c *Call) MemoryRefused() bool { return c.refused }
