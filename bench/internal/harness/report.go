package harness

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// PrintTable writes the results as text tables, one per scenario: per
// system p50, p99, min, max, ops/s, runs and allocs/op, then the Extra
// figures, the ratios (value, target met or not) and the errors.
func PrintTable(w io.Writer, r *Results) {
	m := r.Machine
	dirty := ""
	if m.Dirty {
		dirty = " (dirty)"
	}
	fmt.Fprintf(w, "Breakwater benchmarks — %s, %d cores, %s %s/%s, commit %s%s, %s", m.CPU, m.Cores, m.GoVersion, m.GOOS, m.GOARCH, m.Commit, dirty, m.Date)
	if r.Quick {
		fmt.Fprint(w, ", quick")
	}
	fmt.Fprintln(w)
	for _, s := range r.Scenarios {
		printScenario(w, s)
	}
}

func printScenario(w io.Writer, s ScenarioResult) {
	title := s.Title
	if title == "" {
		title = s.Name
	}
	fmt.Fprintf(w, "\n== %s (%s) — %d rounds after %d warmup, %s\n", title, s.Name, s.Rounds, s.Warmup, human(time.Duration(s.ElapsedS*float64(time.Second))))
	if len(s.Systems) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		nameW := len("system")
		for _, sys := range s.Systems {
			nameW = max(nameW, len(sys.Name))
		}
		fmt.Fprintf(tw, "%-*s\tp50\tp99\tmin\tmax\tops/s\truns\tallocs/op\tB/op\t\n", nameW, "system")
		for _, sys := range s.Systems {
			lat := func(v float64) string {
				if sys.LatencyCount == 0 {
					return "-"
				}
				return human(time.Duration(v * float64(time.Microsecond)))
			}
			allocs, bytes := "-", "-"
			if sys.AllocsMeasured {
				allocs, bytes = trimFloat(sys.AllocsPerOp), trimFloat(sys.BytesPerOp)
			}
			fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", nameW, sys.Name, lat(sys.P50US), lat(sys.P99US), lat(sys.MinUS), lat(sys.MaxUS),
				humanRate(sys.OpsPerS), sys.Runs, allocs, bytes)
		}
		tw.Flush()
		for _, sys := range s.Systems {
			if len(sys.Extra) == 0 {
				continue
			}
			keys := make([]string, 0, len(sys.Extra))
			for k := range sys.Extra {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = k + "=" + trimFloat(sys.Extra[k])
			}
			fmt.Fprintf(w, "  %s: %s\n", sys.Name, strings.Join(parts, " "))
		}
	}
	for _, r := range s.Ratios {
		fmt.Fprintf(w, "  ratio %s: %s\n", r.Name, describeRatio(r))
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "  ERROR %s\n", e.describe(s.Name))
	}
}

func describeRatio(r RatioResult) string {
	dir, cmp := "higher is better", "≥"
	if !r.HigherIsBetter {
		dir, cmp = "lower is better", "≤"
	}
	guard := ""
	if r.Guard {
		guard = ", guarded"
	}
	head := fmt.Sprintf("%s %s / %s", r.Metric, r.Num, r.Den)
	if r.Undefined {
		return fmt.Sprintf("%s = undefined (%s)%s", head, r.Note, guard)
	}
	out := fmt.Sprintf("%s = %.3f (%s%s)", head, r.Value, dir, guard)
	if r.Target != 0 {
		off := (r.Value/r.Target - 1) * 100
		if r.TargetMet {
			out += fmt.Sprintf("; target %s %.3g met (%+.1f %%)", cmp, r.Target, off)
		} else {
			out += fmt.Sprintf("; target %s %.3g NOT met (%+.1f %% off)", cmp, r.Target, off)
		}
	}
	return out
}

func (e RunError) describe(scenario string) string {
	who := scenario
	if e.System != "" {
		who += ", system " + e.System
	}
	return fmt.Sprintf("%s, %s: %s", who, e.Phase, e.Error)
}

// PrintErrors writes one line per error of every scenario; it returns
// how many there were.
func PrintErrors(w io.Writer, r *Results) int {
	n := 0
	for _, s := range r.Scenarios {
		for _, e := range s.Errors {
			if n == 0 {
				fmt.Fprintln(w, "\nFailures:")
			}
			n++
			// Only the first line of the error (panics carry a stack).
			fmt.Fprintf(w, "  FAILED %s\n", firstLine(e.describe(s.Name)))
		}
	}
	return n
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// human formats a duration with 3 significant digits in ns, µs, ms or s.
func human(d time.Duration) string {
	v := float64(d)
	switch {
	case d == 0:
		return "0"
	case v < 1e3:
		return sig3(v) + "ns"
	case v < 1e6:
		return sig3(v/1e3) + "µs"
	case v < 1e9:
		return sig3(v/1e6) + "ms"
	default:
		return sig3(v/1e9) + "s"
	}
}

// humanRate formats a rate with k or M.
func humanRate(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 1e3:
		return sig3(v)
	case v < 1e6:
		return sig3(v/1e3) + "k"
	case v < 1e9:
		return sig3(v/1e6) + "M"
	default:
		return sig3(v/1e9) + "G"
	}
}

// sig3 formats v with 3 significant digits (no exponent for v < 1e4).
func sig3(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
