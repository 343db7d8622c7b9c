// Command bench is Breakwater's benchmark suite (see README.md): it runs
// every scenario, each system of a scenario interleaved with the others,
// prints a table, writes bench/results/latest.json and one SVG chart per
// scenario, and with --compare fails when a guarded ratio regressed.
//
//	go run ./bench [--quick] [--only REGEX] [--out DIR] [--compare FILE] [--tolerance 0.15] [--cpuprofile FILE] [--list] [--against REV]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/breakwater-dev/breakwater/bench/internal/harness"
)

func main() { os.Exit(run()) }

func run() int {
	var (
		quick      = flag.Bool("quick", false, "short version of every scenario (max(1, rounds/3) rounds, one warmup round less); the whole run takes under 2 minutes")
		only       = flag.String("only", "", "run only the scenarios whose name matches this regular expression")
		out        = flag.String("out", "", "directory for latest.json and the charts (default: bench/results under the repository root, the directory holding go.work)")
		compare    = flag.String("compare", "", "baseline results JSON: fail (exit 1) when a guarded ratio is worse than the baseline's by more than --tolerance")
		tolerance  = flag.Float64("tolerance", 0.15, "relative tolerance of --compare (0.15: 15 %)")
		cpuprofile = flag.String("cpuprofile", "", "write a pprof CPU profile of the whole run to this file")
		list       = flag.Bool("list", false, "print the scenario names (with warmup+measured rounds and title) and exit")
		against    = flag.String("against", "", "git revision (commit, tag, branch): build its cmd/runtime in a temporary git worktree and run it as system \"breakwater@<commit>\" beside \"breakwater\" in the async_success scenarios, both as processes (ratio breakwater_vs_<commit>)")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go run ./bench [flags]\n\nBreakwater's benchmark suite (bench/README.md).\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		return 2
	}
	if *tolerance < 0 || *tolerance >= 1 {
		fmt.Fprintln(os.Stderr, "bench: --tolerance must be in [0, 1)")
		return 2
	}

	if *against != "" {
		rev, err := resolveRev(*against)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: --against: %v\n", err)
			return 2
		}
		againstRev = rev
	}

	scenarios := allScenarios()
	if err := harness.Validate(scenarios); err != nil {
		fmt.Fprintf(os.Stderr, "bench: invalid scenarios:\n%v\n", err)
		return 1
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: --only: %v\n", err)
			return 2
		}
		var sel []harness.Scenario
		for _, s := range scenarios {
			if re.MatchString(s.Name) {
				sel = append(sel, s)
			}
		}
		if len(sel) == 0 && len(scenarios) > 0 {
			fmt.Fprintf(os.Stderr, "bench: no scenario matches --only %q (see --list)\n", *only)
			return 1
		}
		scenarios = sel
	}
	if *list {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		for _, s := range scenarios {
			r, w := s.Plan(*quick)
			fmt.Fprintf(tw, "%s\t%d+%d rounds\t%s\n", s.Name, w, r, s.Title)
		}
		tw.Flush()
		return 0
	}
	if len(scenarios) == 0 {
		fmt.Fprintln(os.Stderr, "bench: no scenario to run (allScenarios() returned none); nothing written")
		return 0
	}

	// Where the results go; the baseline is read before anything is
	// written, so that --compare bench/results/latest.json compares with
	// the previous run.
	root, rootErr := harness.FindRepoRoot(".")
	dir := *out
	if dir == "" {
		if rootErr != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", rootErr)
			return 2
		}
		dir = filepath.Join(root, "bench", "results")
	}
	var base *harness.Results
	if *compare != "" {
		var err error
		if base, err = harness.LoadJSON(*compare); err != nil {
			fmt.Fprintf(os.Stderr, "bench: --compare: %v\n", err)
			return 2
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 2
	}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: --cpuprofile: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "bench: --cpuprofile: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	// Ctrl-C cancels the run (the scenario in progress cleans up, nothing
	// is written); a second Ctrl-C kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()

	results := &harness.Results{Machine: harness.DescribeMachine(root), Quick: *quick, Only: *only}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "bench: %d scenario(s)%s on %s, %d cores\n", len(scenarios), map[bool]string{true: ", quick"}[*quick], results.Machine.CPU, results.Machine.Cores)
	results.Scenarios = harness.RunAll(ctx, scenarios, harness.Options{Quick: *quick, Progress: os.Stderr})
	total := time.Since(start)
	fmt.Fprintf(os.Stderr, "bench: %d scenario(s) in %s\n", len(results.Scenarios), total.Round(100*time.Millisecond))
	if *quick && total > 120*time.Second {
		fmt.Fprintf(os.Stderr, "bench: WARNING: the quick run took %s, over its 120 s budget\n", total.Round(time.Second))
	}
	if ctx.Err() != nil {
		harness.PrintTable(os.Stdout, results)
		harness.PrintErrors(os.Stderr, results)
		fmt.Fprintln(os.Stderr, "bench: interrupted; results not written")
		return 130
	}

	harness.PrintTable(os.Stdout, results)
	code := 0
	jsonPath := filepath.Join(dir, "latest.json")
	if err := harness.WriteJSON(jsonPath, results); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		code = 1
	}
	charts, err := harness.WriteCharts(dir, results)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: charts: %v\n", err)
		code = 1
	}
	fmt.Fprintf(os.Stdout, "\nWrote %s and %d chart(s) in %s\n", rel(jsonPath), len(charts), rel(dir))

	if base != nil {
		cs, regressions := harness.Compare(base, results, *tolerance)
		harness.PrintComparisons(os.Stdout, *compare, base, results, cs, regressions, *tolerance)
		if regressions > 0 {
			code = 1
		}
	}
	if harness.PrintErrors(os.Stderr, results) > 0 {
		code = 1
	}
	return code
}

// rel shortens a path relative to the working directory when it can.
func rel(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && len(r) < len(p) {
		return r
	}
	return p
}
