package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Options tune a run of the harness.
type Options struct {
	// Quick asks the scenarios for their short version and cuts the
	// rounds (see Scenario.Plan).
	Quick bool
	// Progress receives one line when a scenario starts and one when it
	// ends (nil: discard).
	Progress io.Writer
	// Now, when set, replaces time.Now (tests).
	Now func() time.Time
}

// Plan returns the number of measured rounds and of warmup rounds for a
// run: Rounds and Warmup, or in quick mode max(1, Rounds/3) and
// max(0, Warmup-1). A scenario always gets at least one measured round.
func (s Scenario) Plan(quick bool) (rounds, warmup int) {
	rounds, warmup = s.Rounds, s.Warmup
	if quick {
		rounds, warmup = rounds/3, warmup-1
	}
	return max(1, rounds), max(0, warmup)
}

// Order returns the order in which n systems run in the given round:
// 0..n-1 rotated to start at round mod n (round 0: A B C, round 1: B C A,
// round 2: C A B, …), so that no system always runs first, right after
// another given one or right before the GC of the next round.
func Order(round, n int) []int {
	order := make([]int, n)
	if n == 0 {
		return order
	}
	start := round % n
	for i := range order {
		order[i] = (start + i) % n
	}
	return order
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Validate checks what can be checked before running: a file-name safe,
// unique name and a Setup. The systems the ratios name are checked once
// Setup returned them.
func Validate(scenarios []Scenario) error {
	var errs []error
	seen := map[string]bool{}
	for i, s := range scenarios {
		switch {
		case !nameRE.MatchString(s.Name):
			errs = append(errs, fmt.Errorf("scenario #%d: name %q is not file-name safe ([A-Za-z0-9_.-])", i, s.Name))
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("scenario %q: duplicate name", s.Name))
		}
		seen[s.Name] = true
		if s.Setup == nil {
			errs = append(errs, fmt.Errorf("scenario %q: no Setup", s.Name))
		}
	}
	return errors.Join(errs...)
}

// RunAll runs the scenarios one after the other. A scenario that fails
// (its Setup or a Run) is recorded with its error and the next ones still
// run; RunAll stops early only when ctx is cancelled.
func RunAll(ctx context.Context, scenarios []Scenario, opt Options) []ScenarioResult {
	var out []ScenarioResult
	for i, s := range scenarios {
		if ctx.Err() != nil {
			break
		}
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "[%d/%d] ", i+1, len(scenarios))
		}
		out = append(out, RunScenario(ctx, s, opt))
	}
	return out
}

// RunScenario sets a scenario up, runs its warmup rounds (discarded) and
// its measured rounds, every system once per round in the rotating order
// of Order, and computes its statistics and ratios. Errors (Setup, a Run,
// a panic in either, a ratio naming an unknown system or figure) are in
// the result's Errors; the first failing Run ends the scenario.
func RunScenario(ctx context.Context, s Scenario, opt Options) (res ScenarioResult) {
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	progress := opt.Progress
	if progress == nil {
		progress = io.Discard
	}
	rounds, warmup := s.Plan(opt.Quick)
	res = ScenarioResult{Name: s.Name, Title: s.Title, Quick: opt.Quick, Rounds: rounds, Warmup: warmup, CDF: s.CDF}
	start := now()
	defer func() { res.ElapsedS = now().Sub(start).Seconds() }()

	fmt.Fprintf(progress, "%s: setup (%d warmup + %d rounds%s)\n", s.Name, warmup, rounds, map[bool]string{true: ", quick"}[opt.Quick])
	systems, cleanup, err := safeSetup(ctx, s, opt.Quick)
	if cleanup != nil {
		defer safeCleanup(&res, cleanup)
	}
	if err == nil && len(systems) == 0 {
		err = errors.New("Setup returned no system")
	}
	if err != nil {
		res.Errors = append(res.Errors, RunError{Phase: "setup", Error: err.Error()})
		fmt.Fprintf(progress, "%s: FAILED in setup after %s: %v\n", s.Name, human(now().Sub(start)), err)
		return res
	}
	names := make([]string, len(systems))
	for i, sys := range systems {
		names[i] = sys.Name
	}

	samples := make([][]Sample, len(systems))
	var failed bool
	for r := 0; r < warmup+rounds && !failed; r++ {
		measured := r >= warmup
		round := r
		if measured {
			round = r - warmup
		}
		for _, i := range Order(round, len(systems)) {
			// Collect the previous run's garbage outside of this run, so
			// that no system pays for another's allocations.
			runtime.GC()
			sample, err := safeRun(ctx, systems[i])
			if err != nil {
				phase := fmt.Sprintf("run (round %d)", round+1)
				if !measured {
					phase = fmt.Sprintf("warmup (round %d)", round+1)
				}
				res.Errors = append(res.Errors, RunError{System: systems[i].Name, Phase: phase, Error: err.Error()})
				fmt.Fprintf(progress, "%s: FAILED, %s %s: %v\n", s.Name, systems[i].Name, phase, err)
				failed = true
				break
			}
			if measured {
				samples[i] = append(samples[i], sample)
			}
		}
	}

	for i, sys := range systems {
		res.Systems = append(res.Systems, Summarize(sys.Name, samples[i]))
	}
	ratios, ratioErrs := ComputeRatios(s.Ratios, res.Systems)
	res.Ratios = ratios
	if !failed {
		for _, e := range ratioErrs {
			res.Errors = append(res.Errors, RunError{Phase: "ratio", Error: e.Error()})
		}
	}
	status := "done"
	if len(res.Errors) > 0 {
		status = "FAILED"
	}
	fmt.Fprintf(progress, "%s: %s [%s] in %s\n", s.Name, status, strings.Join(names, ", "), human(now().Sub(start)))
	return res
}

func safeSetup(ctx context.Context, s Scenario, quick bool) (systems []System, cleanup func(), err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in Setup: %v\n%s", p, debug.Stack())
		}
	}()
	return s.Setup(ctx, quick)
}

func safeRun(ctx context.Context, sys System) (sample Sample, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	if sys.Run == nil {
		return Sample{}, errors.New("system has no Run")
	}
	if err := ctx.Err(); err != nil {
		return Sample{}, err
	}
	return sys.Run(ctx)
}

func safeCleanup(res *ScenarioResult, cleanup func()) {
	defer func() {
		if p := recover(); p != nil {
			res.Errors = append(res.Errors, RunError{Phase: "cleanup", Error: fmt.Sprintf("panic: %v", p)})
		}
	}()
	cleanup()
}
