package harness

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted latencies: the smallest value such that at least p % of the
// values are less or equal to it. It returns 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// Summarize pools the measured samples of one system: percentiles over
// all the latencies of all runs, ops/s as total ops over total elapsed,
// allocs and bytes per op averaged over the runs that measured them, and
// each Extra averaged over the runs that reported it (summed instead when
// its key ends in "_total").
func Summarize(name string, samples []Sample) SystemResult {
	r := SystemResult{Name: name, Runs: len(samples), Extra: map[string]float64{}}
	var elapsed time.Duration
	var lat []time.Duration
	var allocs, bytes float64
	var allocRuns int
	extraN := map[string]int{}
	for _, s := range samples {
		lat = append(lat, s.Latencies...)
		r.Ops += int64(s.Ops)
		elapsed += s.Elapsed
		if s.AllocsMeasured || s.AllocsPerOp != 0 || s.BytesPerOp != 0 {
			allocs += s.AllocsPerOp
			bytes += s.BytesPerOp
			allocRuns++
		}
		for k, v := range s.Extra {
			r.Extra[k] += v
			extraN[k]++
		}
	}
	for k, n := range extraN {
		if !strings.HasSuffix(k, "_total") {
			r.Extra[k] /= float64(n)
		}
	}
	if allocRuns > 0 {
		r.AllocsMeasured = true
		r.AllocsPerOp = allocs / float64(allocRuns)
		r.BytesPerOp = bytes / float64(allocRuns)
	}
	r.ElapsedS = elapsed.Seconds()
	if elapsed > 0 {
		r.OpsPerS = float64(r.Ops) / elapsed.Seconds()
	}
	slices.Sort(lat)
	r.Latencies = lat
	r.LatencyCount = len(lat)
	if len(lat) > 0 {
		var sum float64
		for _, d := range lat {
			sum += float64(d)
		}
		r.P50US = us(Percentile(lat, 50))
		r.P99US = us(Percentile(lat, 99))
		r.MinUS = us(lat[0])
		r.MaxUS = us(lat[len(lat)-1])
		r.MeanUS = sum / float64(len(lat)) / float64(time.Microsecond)
	}
	return r
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Metric returns a figure of a system by the name a Ratio uses:
// "ops_per_s", "p50", "p99", "min", "max", "mean", "allocs_per_op",
// "bytes_per_op", or else an Extra key.
func (r SystemResult) Metric(name string) (float64, bool) {
	switch name {
	case "ops_per_s":
		return r.OpsPerS, true
	case "p50":
		return r.P50US, r.LatencyCount > 0
	case "p99":
		return r.P99US, r.LatencyCount > 0
	case "min":
		return r.MinUS, r.LatencyCount > 0
	case "max":
		return r.MaxUS, r.LatencyCount > 0
	case "mean":
		return r.MeanUS, r.LatencyCount > 0
	case "allocs_per_op":
		return r.AllocsPerOp, r.AllocsMeasured
	case "bytes_per_op":
		return r.BytesPerOp, r.AllocsMeasured
	}
	v, ok := r.Extra[name]
	return v, ok
}

// ComputeRatios computes each ratio as Num's metric over Den's metric. A
// ratio whose system or metric is missing, or whose denominator is 0, is
// returned Undefined with a Note; a missing system or metric is also
// returned as an error (a mistake in the scenario).
func ComputeRatios(ratios []Ratio, systems []SystemResult) ([]RatioResult, []error) {
	byName := map[string]SystemResult{}
	for _, s := range systems {
		byName[s.Name] = s
	}
	var out []RatioResult
	var errs []error
	for _, r := range ratios {
		rr := RatioResult{Name: r.Name, Num: r.Num, Den: r.Den, Metric: r.Metric,
			HigherIsBetter: r.HigherIsBetter, Guard: r.Guard, Target: r.Target}
		num, okN := byName[r.Num]
		den, okD := byName[r.Den]
		var n, d float64
		var hasN, hasD bool
		if okN {
			n, hasN = num.Metric(r.Metric)
		}
		if okD {
			d, hasD = den.Metric(r.Metric)
		}
		switch {
		case !okN || !okD:
			missing := r.Num
			if okN {
				missing = r.Den
			}
			rr.Undefined, rr.Note = true, fmt.Sprintf("no system %q in this scenario", missing)
			errs = append(errs, fmt.Errorf("ratio %s: %s", r.Name, rr.Note))
		case !hasN || !hasD:
			missing := r.Num
			if hasN {
				missing = r.Den
			}
			rr.Undefined, rr.Note = true, fmt.Sprintf("system %q has no figure %q", missing, r.Metric)
			if num.Runs > 0 && den.Runs > 0 {
				errs = append(errs, fmt.Errorf("ratio %s: %s", r.Name, rr.Note))
			}
		case d == 0:
			rr.Undefined, rr.Note = true, fmt.Sprintf("%s of %s is 0", r.Metric, r.Den)
		default:
			rr.Value = n / d
			if r.Target != 0 {
				rr.TargetMet = TargetMet(rr.Value, r.Target, r.HigherIsBetter)
			}
		}
		out = append(out, rr)
	}
	return out, errs
}

// TargetMet reports whether value meets target in the ratio's direction.
func TargetMet(value, target float64, higherIsBetter bool) bool {
	if higherIsBetter {
		return value >= target
	}
	return value <= target
}
