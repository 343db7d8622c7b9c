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
)

// SliceSize is the fuel handed to the guest per refill. Between refills the
// guest runs without returning to Go, so it bounds how late a wall-time
// limit is noticed (about a millisecond of guest work) — and how long the Go
// runtime may wait to stop the world for a GC.
const SliceSize = 1 << 20

type callKey struct{}

// Call is one metered call in progress.
type Call struct {
	global   api.MutableGlobal
	budget   int64
	deadline time.Time
	charged  int64 // fuel used by the slices before the current one
	slice    int64 // fuel handed out for the current slice

	exhausted, expired bool
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

// Begin arms a metered call on mod: budget fuel and a wall-time limit at
// deadline (zero: none). Call the guest with the returned context (the
// refill host function finds the Call in it), then call End exactly once.
func Begin(ctx context.Context, mod api.Module, budget int64, deadline time.Time) (context.Context, *Call, error) {
	g, ok := mod.ExportedGlobal(ExportName).(api.MutableGlobal)
	if !ok {
		return nil, nil, fmt.Errorf("module %q is not metered (no exported mutable global %s)", mod.Name(), ExportName)
	}
	c := &Call{global: g, budget: budget, deadline: deadline, slice: min(budget, SliceSize)}
	g.Set(uint64(c.slice))
	return context.WithValue(ctx, callKey{}, c), c, nil
}

// refill is bw_meter.refill: the guest's slice ran out. It accounts the
// slice, stops the guest (by panicking, which wazero turns into the call's
// error) when the budget or the deadline is spent, else hands out the next
// slice.
func refill(ctx context.Context, _ api.Module, _ []uint64) {
	c, _ := ctx.Value(callKey{}).(*Call)
	if c == nil {
		// Only a start section runs outside Begin: at instantiation.
		panic(errors.New("the module ran longer than allowed outside a call (a start function doing real work? move it to _initialize, which runs under limits)"))
	}
	left := int64(c.global.Get())
	c.charged += c.slice - left
	c.slice = 0
	c.global.Set(0)
	if c.charged > c.budget {
		c.exhausted = true
		panic(ErrFuelExhausted)
	}
	if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		c.expired = true
		panic(ErrDeadlineExceeded)
	}
	c.slice = min(SliceSize, c.budget-c.charged)
	c.global.Set(uint64(c.slice))
}

// End returns the fuel the call used and how it ended: nil,
// ErrFuelExhausted or ErrDeadlineExceeded (wrapped), or callErr.
func (c *Call) End(callErr error) (used int64, err error) {
	used = c.charged + c.slice - int64(c.global.Get())
	switch {
	case c.exhausted:
		return c.budget, fmt.Errorf("%w: the call needed more than its budget of %d", ErrFuelExhausted, c.budget)
	case c.expired:
		return used, fmt.Errorf("%w: still running at the deadline (%d fuel used)", ErrDeadlineExceeded, used)
	}
	return used, callErr
}
