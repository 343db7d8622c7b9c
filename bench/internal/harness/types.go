// Package harness runs benchmark scenarios side by side: every system of a
// scenario is measured in the same run, interleaved (A B A B …), so that
// ratios between systems hold on a noisy, shared machine. It computes the
// statistics, prints the table, writes results JSON and SVG charts, and
// compares ratios against a baseline.
package harness

import (
	"context"
	"time"
)

// Sample is one measured run of one system.
type Sample struct {
	// Latencies of the operations measured (publish → result, one
	// decision, one call...). May be empty for throughput-only runs.
	Latencies []time.Duration
	// Ops is the number of operations done in Elapsed (messages,
	// decisions, calls).
	Ops     int
	Elapsed time.Duration
	// AllocsPerOp and BytesPerOp, when measured (decision overhead).
	AllocsPerOp float64
	BytesPerOp  float64
	// AllocsMeasured says AllocsPerOp and BytesPerOp were measured, so
	// that a measured 0 shows as 0 and not as "not measured" (a non-zero
	// AllocsPerOp or BytesPerOp counts as measured too).
	AllocsMeasured bool
	// Extra holds scenario-specific figures (lost messages, duplicate
	// outcomes, seconds to recover, RSS bytes…), summed over runs when
	// the name ends in "_total", else averaged.
	Extra map[string]float64
}

// System is one contender of a scenario.
type System struct {
	Name string
	// Run performs one measured run and returns its sample. It is called
	// once per round, interleaved with the other systems' runs.
	Run func(ctx context.Context) (Sample, error)
}

// Ratio is a figure of merit: Num's metric over Den's metric, from the
// same run. The regression guard compares ratios, never absolute times.
type Ratio struct {
	Name   string // e.g. "breakwater_vs_handwritten_256"
	Num    string // system name
	Den    string // system name
	Metric string // "ops_per_s", "p50", "p99", or an Extra key
	// HigherIsBetter: true for throughput; false for latencies. The guard
	// fails when the ratio moves the wrong way by more than the tolerance.
	HigherIsBetter bool
	// Guard: whether --compare checks this ratio (some ratios are
	// reported only, being too noisy to gate CI on).
	Guard bool
	// Target, when non-zero, is the goal the issue sets for this ratio
	// (reported as met or not, never gating CI).
	Target float64
}

// Scenario is a set of systems measured side by side.
type Scenario struct {
	Name  string // file-name safe: async_success_256, decision_overhead, ...
	Title string // for the table and the chart
	// Setup starts what the systems share (servers, targets) and returns
	// the systems and a cleanup. quick asks for the short version.
	Setup func(ctx context.Context, quick bool) (systems []System, cleanup func(), err error)
	// Rounds is how many interleaved rounds to run (each system runs once
	// per round); Warmup rounds are run first and discarded.
	Rounds, Warmup int
	// CDF asks for a latency CDF chart besides the bar chart.
	CDF    bool
	Ratios []Ratio
}
