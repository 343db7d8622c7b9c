package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Results is what bench/results/latest.json holds.
type Results struct {
	Machine   Machine          `json:"machine"`
	Quick     bool             `json:"quick"`
	Only      string           `json:"only,omitempty"` // the --only regexp, if any
	Scenarios []ScenarioResult `json:"scenarios"`
}

// Machine describes where the results were measured.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"` // runtime.NumCPU
	GoVersion string `json:"go_version"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	Commit    string `json:"commit"`          // git rev-parse --short HEAD, or "unknown"
	Dirty     bool   `json:"dirty,omitempty"` // uncommitted changes to tracked files
	Date      string `json:"date"`            // RFC 3339, UTC
}

// ScenarioResult is one scenario's outcome.
type ScenarioResult struct {
	Name     string         `json:"name"`
	Title    string         `json:"title"`
	Quick    bool           `json:"quick"`
	Rounds   int            `json:"rounds"` // measured rounds
	Warmup   int            `json:"warmup"` // discarded rounds
	CDF      bool           `json:"cdf,omitempty"`
	ElapsedS float64        `json:"elapsed_s"` // wall time, setup to cleanup
	Systems  []SystemResult `json:"systems"`
	Ratios   []RatioResult  `json:"ratios"`
	Errors   []RunError     `json:"errors,omitempty"`
}

// SystemResult is one system's figures over the measured rounds.
type SystemResult struct {
	Name           string             `json:"name"`
	Runs           int                `json:"runs"`
	P50US          float64            `json:"p50_us"`
	P99US          float64            `json:"p99_us"`
	MinUS          float64            `json:"min_us"`
	MaxUS          float64            `json:"max_us"`
	MeanUS         float64            `json:"mean_us"`
	LatencyCount   int                `json:"latency_count"` // latencies pooled for the percentiles
	OpsPerS        float64            `json:"ops_per_s"`
	Ops            int64              `json:"ops"`       // total over the measured runs
	ElapsedS       float64            `json:"elapsed_s"` // total over the measured runs
	AllocsPerOp    float64            `json:"allocs_per_op"`
	BytesPerOp     float64            `json:"bytes_per_op"`
	AllocsMeasured bool               `json:"allocs_measured"`
	Extra          map[string]float64 `json:"extra"`

	// Latencies are all the measured latencies, sorted (for the CDF
	// chart); not written to the JSON.
	Latencies []time.Duration `json:"-"`
}

// RatioResult is a Ratio with its value.
type RatioResult struct {
	Name           string  `json:"name"`
	Num            string  `json:"num"`
	Den            string  `json:"den"`
	Metric         string  `json:"metric"`
	Value          float64 `json:"value"`
	HigherIsBetter bool    `json:"higher_is_better"`
	Guard          bool    `json:"guard"`
	Target         float64 `json:"target"` // 0: none
	TargetMet      bool    `json:"target_met"`
	// Undefined: the value could not be computed (Note says why); the
	// guard skips it.
	Undefined bool   `json:"undefined,omitempty"`
	Note      string `json:"note,omitempty"`
}

// RunError is a failure of a scenario.
type RunError struct {
	System string `json:"system,omitempty"`
	Phase  string `json:"phase"` // setup, warmup (round n), run (round n), ratio, cleanup
	Error  string `json:"error"`
}

// Failed reports whether any scenario has an error.
func (r *Results) Failed() bool {
	for _, s := range r.Scenarios {
		if len(s.Errors) > 0 {
			return true
		}
	}
	return false
}

// WriteJSON writes the results, indented, to path (through a temporary
// file, so that an interrupted write leaves the previous file whole).
func WriteJSON(path string, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadJSON reads results written by WriteJSON.
func LoadJSON(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// FindRepoRoot walks up from dir to the directory holding go.work.
func FindRepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no go.work in " + dir + " or above (run from the repository, or pass --out)")
		}
		d = parent
	}
}

// DescribeMachine gathers the machine description; repoRoot (may be
// empty) is where git is asked for the commit.
func DescribeMachine(repoRoot string) Machine {
	m := Machine{
		CPU:       cpuModel(),
		Cores:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
		Commit:    "unknown",
		Date:      time.Now().UTC().Format(time.RFC3339),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = repoRoot
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if c, err := git("rev-parse", "--short", "HEAD"); err == nil && c != "" {
		m.Commit = c
		if st, err := git("status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
			m.Dirty = true
		}
	}
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	var fallback string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name":
			if v != "" {
				return v
			}
		case "Hardware", "Model", "cpu model", "uarch":
			if fallback == "" {
				fallback = v
			}
		}
	}
	if fallback != "" {
		return fallback
	}
	return "unknown"
}
