package engine

import "time"

// Limits bound one call.
type Limits struct {
	Fuel        int64         // instruction budget (see host/meter)
	WallTime    time.Duration // wall-clock limit
	MemoryPages uint32        // 64 KiB pages the module's memory may grow to
	OutputBytes uint32        // size of the encoded output record
}

// DefaultLimits are the defaults of config modules.limits.
func DefaultLimits() Limits {
	return Limits{Fuel: 50_000_000, WallTime: 50 * time.Millisecond, MemoryPages: 512, OutputBytes: 64 << 10}
}

// WithDefaults fills zero fields from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.Fuel <= 0 {
		l.Fuel = d.Fuel
	}
	if l.WallTime <= 0 {
		l.WallTime = d.WallTime
	}
	if l.MemoryPages == 0 {
		l.MemoryPages = d.MemoryPages
	}
	if l.OutputBytes == 0 {
		l.OutputBytes = d.OutputBytes
	}
	return l
}

// initLimits bound instantiation and _initialize: a Go guest's runtime
// start-up costs far more than a decision.
func initLimits(l Limits) Limits {
	l.Fuel = max(l.Fuel*20, 2_000_000_000)
	l.WallTime = max(l.WallTime*20, 10*time.Second)
	return l
}
