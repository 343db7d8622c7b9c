package harness

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Comparison statuses.
const (
	StatusOK          = "ok"
	StatusRegression  = "REGRESSION"
	StatusMissingNow  = "missing (not in this run)"
	StatusMissingBase = "missing (not in the baseline)"
	StatusUndefined   = "undefined (skipped)"
)

// Comparison is one guarded ratio compared with the baseline.
type Comparison struct {
	Scenario, Ratio string
	Metric          string
	HigherIsBetter  bool
	Base, Now       float64
	Change          float64 // Now/Base - 1
	Status          string
	Note            string
}

// Regression reports whether the comparison fails the guard.
func (c Comparison) Regression() bool { return c.Status == StatusRegression }

// Regressed applies the guard to one ratio: for higher-is-better, now <
// base*(1-tol); for lower-is-better, now > base*(1+tol).
func Regressed(base, now, tol float64, higherIsBetter bool) bool {
	if higherIsBetter {
		return now < base*(1-tol)
	}
	return now > base*(1+tol)
}

// Compare checks every guarded ratio (Guard in this run, or in the
// baseline when this run lacks it) against the baseline with a relative
// tolerance tol. Only ratios are compared, never absolute figures.
// Ratios missing on either side, or undefined, are reported and do not
// fail; the number of regressions is returned.
func Compare(base, now *Results, tol float64) (cs []Comparison, regressions int) {
	type key struct{ scenario, ratio string }
	baseRatios := map[key]RatioResult{}
	for _, s := range base.Scenarios {
		for _, r := range s.Ratios {
			baseRatios[key{s.Name, r.Name}] = r
		}
	}
	seen := map[key]bool{}
	for _, s := range now.Scenarios {
		for _, r := range s.Ratios {
			k := key{s.Name, r.Name}
			seen[k] = true
			if !r.Guard {
				continue
			}
			c := Comparison{Scenario: s.Name, Ratio: r.Name, Metric: r.Metric, HigherIsBetter: r.HigherIsBetter, Now: r.Value}
			b, ok := baseRatios[k]
			switch {
			case !ok:
				c.Status = StatusMissingBase
			case r.Undefined || b.Undefined || b.Value == 0:
				c.Base = b.Value
				c.Status = StatusUndefined
				c.Note = r.Note
				if c.Note == "" {
					c.Note = b.Note
				}
			default:
				c.Base = b.Value
				c.Change = r.Value/b.Value - 1
				c.Status = StatusOK
				if Regressed(b.Value, r.Value, tol, r.HigherIsBetter) {
					c.Status = StatusRegression
					regressions++
				}
			}
			cs = append(cs, c)
		}
	}
	for _, s := range base.Scenarios {
		for _, r := range s.Ratios {
			if !r.Guard || seen[key{s.Name, r.Name}] {
				continue
			}
			cs = append(cs, Comparison{Scenario: s.Name, Ratio: r.Name, Metric: r.Metric,
				HigherIsBetter: r.HigherIsBetter, Base: r.Value, Status: StatusMissingNow})
		}
	}
	return cs, regressions
}

// PrintComparisons writes one line per compared ratio.
func PrintComparisons(w io.Writer, baseFile string, base, now *Results, cs []Comparison, regressions int, tol float64) {
	fmt.Fprintf(w, "\nGuard: ratios compared with %s (commit %s, %s, quick=%v), tolerance %.0f %%\n",
		baseFile, base.Machine.Commit, base.Machine.Date, base.Quick, tol*100)
	if base.Quick != now.Quick {
		fmt.Fprintf(w, "note: the baseline has quick=%v and this run quick=%v; the ratios may differ for that reason alone\n", base.Quick, now.Quick)
	}
	if len(cs) == 0 {
		fmt.Fprintln(w, "no guarded ratio to compare")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tratio\tmetric\tbase\tnow\tchange\tstatus")
	for _, c := range cs {
		dir := "higher is better"
		if !c.HigherIsBetter {
			dir = "lower is better"
		}
		baseS, nowS, change := fmtRatio(c.Base), fmtRatio(c.Now), fmt.Sprintf("%+.1f %%", c.Change*100)
		switch c.Status {
		case StatusMissingBase:
			baseS, change = "-", "-"
		case StatusMissingNow:
			nowS, change = "-", "-"
		case StatusUndefined:
			change = "-"
		}
		status := c.Status
		if c.Note != "" {
			status += ": " + c.Note
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%s)\t%s\t%s\t%s\t%s\n", c.Scenario, c.Ratio, c.Metric, dir, baseS, nowS, change, status)
	}
	tw.Flush()
	if regressions > 0 {
		fmt.Fprintf(w, "%d guarded ratio(s) regressed by more than %.0f %%\n", regressions, tol*100)
	} else {
		fmt.Fprintln(w, "no regression")
	}
}

func fmtRatio(v float64) string { return fmt.Sprintf("%.3f", v) }
