package harness

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The charts are hand-written SVG 1.1: no script, no external font or
// stylesheet, a white background, so that a browser, an image viewer,
// rsvg-convert or GitHub's renderer show them the same.

var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79"}

func color(i int) string { return palette[i%len(palette)] }

// WriteCharts writes <name>.svg for every scenario that has measured
// systems, and <name>_cdf.svg when the scenario asked for a CDF and has
// latencies (in memory: Latencies are not kept in the JSON). It returns the paths written.
func WriteCharts(dir string, r *Results) ([]string, error) {
	var paths []string
	for _, s := range r.Scenarios {
		if !hasRuns(s) {
			continue
		}
		p := filepath.Join(dir, s.Name+".svg")
		if err := os.WriteFile(p, BarChart(s), 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, p)
		if s.CDF && hasLatencySamples(s) {
			p := filepath.Join(dir, s.Name+"_cdf.svg")
			if err := os.WriteFile(p, CDFChart(s), 0o644); err != nil {
				return paths, err
			}
			paths = append(paths, p)
		}
	}
	return paths, nil
}

func hasRuns(s ScenarioResult) bool {
	for _, sys := range s.Systems {
		if sys.Runs > 0 {
			return true
		}
	}
	return false
}

func hasLatencies(s ScenarioResult) bool {
	for _, sys := range s.Systems {
		if sys.LatencyCount > 0 {
			return true
		}
	}
	return false
}

// hasLatencySamples: the latencies themselves are there (they are not
// in the JSON, so results loaded from a file have no CDF).
func hasLatencySamples(s ScenarioResult) bool {
	for _, sys := range s.Systems {
		if len(sys.Latencies) > 0 {
			return true
		}
	}
	return false
}

type svg struct {
	b bytes.Buffer
	w float64
}

func (g *svg) f(format string, args ...any) { fmt.Fprintf(&g.b, format, args...) }

// text writes a <text> element with escaped content.
func (g *svg) text(x, y float64, attrs, s string) {
	g.f(`<text x="%.1f" y="%.1f" %s>`, x, y, attrs)
	_ = xml.EscapeText(&g.b, []byte(s))
	g.f("</text>\n")
}

// open starts the document; its height is set by close, once known.
func (g *svg) open(w, _ float64, title string) {
	g.w = w
	g.f("<title>")
	_ = xml.EscapeText(&g.b, []byte(title))
	g.f("</title>\n")
}

// header writes the title and the subtitle, centred and wrapped, and
// returns the y below them.
func (g *svg) header(w float64, title, sub string) float64 {
	y := 26.0
	for _, line := range wrap(title, int((w-40)/10.5)) {
		g.text(w/2, y, `text-anchor="middle" font-size="17" font-weight="bold"`, line)
		y += 21
	}
	y -= 2
	for _, line := range wrap(sub, int((w-40)/6.8)) {
		g.text(w/2, y, `text-anchor="middle" font-size="12" fill="#555555"`, line)
		y += 16
	}
	return y
}

func (g *svg) close(h float64) []byte {
	var out bytes.Buffer
	out.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&out, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`+"\n", g.w, h, g.w, h)
	fmt.Fprintf(&out, `<rect x="0" y="0" width="%.0f" height="%.0f" fill="#ffffff"/>`+"\n", g.w, h)
	out.Write(g.b.Bytes())
	out.WriteString("</svg>\n")
	return out.Bytes()
}

// wrap splits s into lines of at most n runes, at spaces when it can.
func wrap(s string, n int) []string {
	var lines []string
	var cur []rune
	for _, word := range strings.Fields(s) {
		w := []rune(word)
		switch {
		case len(cur) == 0:
			cur = w
		case len(cur)+1+len(w) <= n:
			cur = append(append(cur, ' '), w...)
		default:
			lines = append(lines, string(cur))
			cur = w
		}
		for len(cur) > n {
			lines = append(lines, string(cur[:n]))
			cur = cur[n:]
		}
	}
	if len(cur) > 0 || len(lines) == 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

func chartTitle(s ScenarioResult) string {
	if s.Title != "" {
		return s.Title
	}
	return s.Name
}

func subtitle(s ScenarioResult, what string) string {
	q := ""
	if s.Quick {
		q = ", quick"
	}
	return fmt.Sprintf("%s — %s; %d rounds, systems interleaved%s", s.Name, what, s.Rounds, q)
}

// BarChart draws one horizontal bar per system: p50 with a whisker to
// p99 when the scenario has latencies, else ops/s. The axis is linear
// from 0, or logarithmic when the figures span more than two decades
// (else the smallest bars would not show).
func BarChart(s ScenarioResult) []byte {
	latency := hasLatencies(s)
	const (
		W, left, right, row, barH = 900.0, 180.0, 230.0, 46.0, 24.0
	)
	value := func(sys SystemResult) (v, whisker float64) {
		if latency {
			return sys.P50US * 1e3, sys.P99US * 1e3 // ns
		}
		return sys.OpsPerS, sys.OpsPerS
	}
	var lo, hi float64 = math.Inf(1), 0
	for _, sys := range s.Systems {
		if sys.Runs == 0 || (latency && sys.LatencyCount == 0) {
			continue
		}
		v, wv := value(sys)
		hi = max(hi, v, wv)
		if v > 0 {
			lo = min(lo, v)
		}
	}
	logScale := !math.IsInf(lo, 0) && hi/lo > 100
	label := func(v float64) string { // an axis tick
		u, div := rateUnit(v)
		if latency {
			u, div = durationUnit(v)
		}
		if v == 0 {
			return "0"
		}
		return fmtNum(v/div) + u
	}

	what := "median (p50) latency per system, whisker to p99, lower is better"
	if !latency {
		what = "throughput per system, higher is better"
	}
	if logScale {
		what += ", log scale"
	}
	var g svg
	g.open(W, 0, chartTitle(s)) // height patched below
	top := g.header(W, chartTitle(s), subtitle(s, what)) + 26
	n := float64(len(s.Systems))
	plotW := W - left - right
	plotH := n*row + 8
	H := top + plotH + 62

	var x func(v float64) float64
	var ticks, minor []float64
	if logScale {
		d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		x = func(v float64) float64 { return left + (math.Log10(max(v, math.Pow(10, d0)))-d0)/(d1-d0)*plotW }
		for d := d0; d <= d1; d++ {
			ticks = append(ticks, math.Pow(10, d))
			for k := 2.0; k <= 9 && d < d1; k++ {
				minor = append(minor, k*math.Pow(10, d))
			}
		}
	} else {
		var axisMax float64
		ticks, axisMax = niceTicks(hi)
		x = func(v float64) float64 { return left + v/axisMax*plotW }
		if latency { // label the ticks in one unit, from the axis maximum
			u, div := durationUnit(axisMax)
			label = func(v float64) string {
				if v == 0 {
					return "0"
				}
				return fmtNum(v/div) + u
			}
		}
	}

	// Legend.
	if latency {
		lx, ly := W-right+20.0, top-26
		g.f(`<rect x="%.1f" y="%.1f" width="18" height="10" fill="#999999"/>`+"\n", lx, ly)
		g.text(lx+24, ly+9, `font-size="11"`, "p50")
		g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333" stroke-width="1.5"/>`+"\n", lx+60, ly+5, lx+78, ly+5)
		g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333" stroke-width="1.5"/>`+"\n", lx+78, ly, lx+78, ly+10)
		g.text(lx+84, ly+9, `font-size="11"`, "p99")
	}

	// Grid and x axis.
	axisY := top + plotH
	for _, t := range minor {
		g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#f0f0f0"/>`+"\n", x(t), top, x(t), axisY)
	}
	for _, t := range ticks {
		tx := x(t)
		g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e3e3e3"/>`+"\n", tx, top, tx, axisY)
		g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333"/>`+"\n", tx, axisY, tx, axisY+5)
		g.text(tx, axisY+19, `text-anchor="middle" font-size="11"`, label(t))
	}
	g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333"/>`+"\n", left, axisY, left+plotW, axisY)
	g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333"/>`+"\n", left, top, left, axisY)
	axisLabel := "latency"
	if !latency {
		axisLabel = "operations per second"
	}
	if logScale {
		axisLabel += " (log scale)"
	}
	g.text(left+plotW/2, axisY+44, `text-anchor="middle" font-size="12"`, axisLabel)

	// Bars.
	for i, sys := range s.Systems {
		cy := top + 4 + float64(i)*row + row/2
		g.text(left-10, cy-1, `text-anchor="end" font-size="13"`, sys.Name)
		g.text(left-10, cy+13, `text-anchor="end" font-size="10" fill="#777777"`, fmt.Sprintf("%d runs", sys.Runs))
		if sys.Runs == 0 || (latency && sys.LatencyCount == 0) {
			g.text(left+8, cy+4, `font-size="11" fill="#777777"`, "no data")
			continue
		}
		v, wv := value(sys)
		g.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.85"/>`+"\n", left, cy-barH/2, max(x(v)-left, 1), barH, color(i))
		var text string
		end := x(v)
		if latency {
			wx := x(wv)
			g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333" stroke-width="1.5"/>`+"\n", x(v), cy, wx, cy)
			g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333" stroke-width="1.5"/>`+"\n", wx, cy-barH/3, wx, cy+barH/3)
			end = max(end, wx)
			text = fmt.Sprintf("p50 %s · p99 %s", human(time.Duration(v)), human(time.Duration(wv)))
		} else {
			text = humanRate(v) + " ops/s"
		}
		g.text(end+8, cy+4, `font-size="12"`, text)
	}
	return g.close(H)
}

// CDFChart draws the latency CDF of every system: the fraction of
// operations (y, linear) done within a latency (x, log scale).
func CDFChart(s ScenarioResult) []byte {
	const (
		W, left, right, bottom, plotH = 900.0, 70.0, 230.0, 64.0, 386.0
	)
	plotW := W - left - right
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, sys := range s.Systems {
		if len(sys.Latencies) == 0 {
			continue
		}
		lo = min(lo, float64(max(sys.Latencies[0], 1)))
		hi = max(hi, float64(max(sys.Latencies[len(sys.Latencies)-1], 1)))
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1e3, 1e6
	}
	d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if d1 <= d0 {
		d1 = d0 + 1
	}

	var g svg
	g.open(W, 0, chartTitle(s)+" — latency CDF")
	top := g.header(W, chartTitle(s)+" — latency CDF", subtitle(s, "share of operations done within a latency; further left is better")) + 12
	H := top + plotH + bottom
	x := func(ns float64) float64 {
		return left + (math.Log10(max(ns, 1))-d0)/(d1-d0)*plotW
	}
	y := func(q float64) float64 { return top + (1-q)*plotH }

	// Vertical grid: decades (labelled) and 2…9 (light).
	for d := d0; d <= d1; d++ {
		base := math.Pow(10, d)
		tx := x(base)
		g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#cccccc"/>`+"\n", tx, top, tx, top+plotH)
		g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333"/>`+"\n", tx, top+plotH, tx, top+plotH+5)
		u, div := durationUnit(base)
		g.text(tx, top+plotH+19, `text-anchor="middle" font-size="11"`, fmtNum(base/div)+u)
		if d == d1 {
			break
		}
		for k := 2.0; k <= 9; k++ {
			mx := x(k * base)
			g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#f0f0f0"/>`+"\n", mx, top, mx, top+plotH)
		}
	}
	// Horizontal grid: every 10 %, and the 99th percentile dashed.
	for i := 0; i <= 10; i++ {
		q := float64(i) / 10
		g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e3e3e3"/>`+"\n", left, y(q), left+plotW, y(q))
		g.text(left-8, y(q)+4, `text-anchor="end" font-size="11"`, fmt.Sprintf("%d %%", i*10))
	}
	g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999999" stroke-dasharray="4 3"/>`+"\n", left, y(0.99), left+plotW, y(0.99))
	g.text(left+4, y(0.99)+11, `font-size="10" fill="#777777"`, "p99")
	g.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333333"/>`+"\n", left, top, plotW, plotH)
	g.text(left+plotW/2, H-18, `text-anchor="middle" font-size="12"`, "latency (log scale)")
	g.f(`<text x="18" y="%.1f" text-anchor="middle" font-size="12" transform="rotate(-90 18 %.1f)">operations done within (cumulative %%)</text>`+"\n", top+plotH/2, top+plotH/2)

	// Lines and legend.
	ly := top + 8
	for i, sys := range s.Systems {
		if len(sys.Latencies) == 0 {
			continue
		}
		var pts strings.Builder
		for _, p := range cdfPoints(sys.Latencies) {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(float64(p.d)), y(p.q))
		}
		g.f(`<polyline fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" points="%s"/>`+"\n", color(i), strings.TrimSpace(pts.String()))
		lx := left + plotW + 18
		g.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", lx, ly, lx+22, ly, color(i))
		g.text(lx+28, ly+4, `font-size="12"`, sys.Name)
		g.text(lx+28, ly+18, `font-size="10" fill="#555555"`, fmt.Sprintf("p50 %s · p99 %s",
			human(Percentile(sys.Latencies, 50)), human(Percentile(sys.Latencies, 99))))
		g.text(lx+28, ly+31, `font-size="10" fill="#555555"`, fmt.Sprintf("min %s · max %s",
			human(sys.Latencies[0]), human(sys.Latencies[len(sys.Latencies)-1])))
		ly += 50
	}
	return g.close(H)
}

type cdfPoint struct {
	d time.Duration
	q float64
}

// cdfPoints samples the empirical CDF of sorted latencies: every point
// for up to 2000 values, else 1000 quantiles plus a denser tail.
func cdfPoints(sorted []time.Duration) []cdfPoint {
	n := len(sorted)
	var pts []cdfPoint
	if n <= 2000 {
		for i, d := range sorted {
			pts = append(pts, cdfPoint{d, float64(i+1) / float64(n)})
		}
		return pts
	}
	var qs []float64
	for k := 1; k <= 990; k++ {
		qs = append(qs, float64(k)/1000)
	}
	for k := 1; k <= 100; k++ { // 99.01 % … 100 %
		qs = append(qs, 0.99+float64(k)/10000)
	}
	pts = append(pts, cdfPoint{sorted[0], 1 / float64(n)})
	for _, q := range qs {
		pts = append(pts, cdfPoint{Percentile(sorted, q*100), q})
	}
	return pts
}

// niceTicks returns ticks from 0 in steps of 1, 2 or 5 × 10^k covering
// maxV, and the axis maximum (the last tick).
func niceTicks(maxV float64) (ticks []float64, axisMax float64) {
	if maxV <= 0 || math.IsNaN(maxV) || math.IsInf(maxV, 0) {
		maxV = 1
	}
	raw := maxV / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	axisMax = math.Ceil(maxV/step-1e-9) * step
	for i := 0; ; i++ {
		t := float64(i) * step
		if t > axisMax*(1+1e-9) {
			break
		}
		ticks = append(ticks, t)
	}
	return ticks, axisMax
}

// durationUnit picks the unit to label an axis going to maxNs.
func durationUnit(maxNs float64) (string, float64) {
	switch {
	case maxNs < 1e3:
		return "ns", 1
	case maxNs < 1e6:
		return "µs", 1e3
	case maxNs < 1e9:
		return "ms", 1e6
	default:
		return "s", 1e9
	}
}

// rateUnit picks the suffix to label a rate axis going to maxV.
func rateUnit(maxV float64) (string, float64) {
	switch {
	case maxV < 1e3:
		return "", 1
	case maxV < 1e6:
		return "k", 1e3
	default:
		return "M", 1e6
	}
}

func fmtNum(v float64) string {
	v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return strconv.FormatFloat(v, 'f', -1, 64)
}
