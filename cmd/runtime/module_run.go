package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/modulestore"
)

// The flags of `module run` and `module check` that clash with the root's
// persistent --config (the runtime's YAML config): on these commands
// --config is the module's config (JSON), as in a route, and the runtime's
// config is --runtime-config (-c).
const (
	moduleConfigUsage  = "the module's config, as a route gives it: a JSON file, or inline JSON starting with '{' (on this command --config is NOT the runtime's YAML config: that is --runtime-config)"
	runtimeConfigUsage = "the runtime's YAML config (env BW_CONFIG): the module store to fetch NAME[@vN] from, the compilation cache and the default limits; -c here means this, --config means the module's config"
)

// addRuntimeConfigFlag adds --runtime-config/-c to cmd, in place of the
// root's persistent --config/-c, which cmd's own --config shadows.
func addRuntimeConfigFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "runtime-config", "c", os.Getenv("BW_CONFIG"), runtimeConfigUsage)
}

// loadRuntimeConfig loads the runtime's config named by --runtime-config.
func loadRuntimeConfig(path string) (*config.Config, error) {
	cfg, err := config.LoadClient(path, nil)
	if err != nil {
		return nil, fmt.Errorf("--runtime-config: %w", err)
	}
	return cfg, nil
}

// readModuleConfig reads --config: inline JSON (starting with '{') or a
// file holding a JSON object. "" is no config.
func readModuleConfig(v string) ([]byte, error) { return readModuleConfigFlag("--config", v) }

// readModuleConfigFlag reads the module's config given as flag.
func readModuleConfigFlag(flag, v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	b, where := []byte(v), "inline"
	if t := strings.TrimSpace(v); !strings.HasPrefix(t, "{") {
		var err error
		if b, err = os.ReadFile(v); err != nil {
			return nil, fmt.Errorf("%s (the module's config, a JSON file or inline JSON): %w", flag, err)
		}
		where = v
	}
	b = bytes.TrimSpace(b)
	if !json.Valid(b) || len(b) == 0 || b[0] != '{' {
		hint := ""
		if strings.HasSuffix(v, ".yaml") || strings.HasSuffix(v, ".yml") {
			hint = "; the runtime's YAML config goes in --runtime-config (-c)"
		}
		return nil, fmt.Errorf("%s %s: the module's config must be a JSON object, as a route's modules.<kind>.config%s", flag, where, hint)
	}
	var c bytes.Buffer
	_ = json.Compact(&c, b)
	return c.Bytes(), nil
}

// dryRunOptions reads the module config (flag configFlag) and the
// --input flags (KIND=FILE or FILE) of module check and push.
func dryRunOptions(configFlag, config string, inputs []string) (engine.DryRunOptions, error) {
	var o engine.DryRunOptions
	var err error
	if o.Config, err = readModuleConfigFlag(configFlag, config); err != nil {
		return o, err
	}
	for _, v := range inputs {
		path := v
		var kind engine.Kind
		if k, p, ok := strings.Cut(v, "="); ok {
			if kind, err = parseKind(k); err != nil {
				return o, fmt.Errorf("--input %s: %w (--input is KIND=FILE or FILE)", v, err)
			}
			path = p
		}
		in, err := readInputFile(path)
		if err != nil {
			return o, fmt.Errorf("--input %s: %w", v, err)
		}
		switch {
		case kind != "" && o.Inputs[kind] != nil, kind == "" && o.Input != nil:
			return o, fmt.Errorf("--input %s: a second input for the same kinds (one per kind)", v)
		case kind != "":
			if o.Inputs == nil {
				o.Inputs = map[engine.Kind]*abi.Input{}
			}
			o.Inputs[kind] = in
		default:
			o.Input = in
		}
	}
	return o, nil
}

// readInputFile reads a file holding one JSON input record.
func readInputFile(path string) (*abi.Input, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var in abi.Input
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("want one JSON input record (docs/abi.md, \"Inputs as JSON\"): %w", err)
	}
	if dec.More() {
		return nil, errors.New("holds more than one input record: a dry run takes one per kind")
	}
	return &in, nil
}

// noConfigHint adds a hint to a failed dry run without a module config.
func noConfigHint(err error, o engine.DryRunOptions, flag string) string {
	var ve *engine.ValidationError
	if len(o.Config) > 0 || !errors.As(err, &ve) || ve.Rule != "dry_run" {
		return ""
	}
	return fmt.Sprintf(" (no module config was given: if the module requires one, pass it with %s)", flag)
}

// parseKind reads a kind name.
func parseKind(s string) (engine.Kind, error) {
	switch k := engine.Kind(strings.ToLower(strings.TrimSpace(s))); k {
	case engine.KindRetry, engine.KindFallback, engine.KindStub, engine.KindClassify:
		return k, nil
	}
	return "", fmt.Errorf("unknown kind %q: want retry, fallback, stub or classify", s)
}

func kindNames(ks []engine.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// moduleSource is a module's bytes and how to name it.
type moduleSource struct {
	wasm          []byte
	name, version string
}

// isModuleFile says whether the argument of module run is a file rather
// than a stored module's NAME[@vN]: a path that exists, or one ending in
// .wasm or holding a path separator.
func isModuleFile(arg string) bool {
	if _, err := os.Stat(arg); err == nil {
		return true
	}
	return strings.HasSuffix(arg, ".wasm") || strings.ContainsRune(arg, '/') || strings.ContainsRune(arg, filepath.Separator)
}

// loadModuleSource reads a module file, or fetches NAME[@vN] from the
// module store of cfg (sha256 checked and, in secure mode, the signature
// verified, as the runtime does).
func loadModuleSource(ctx context.Context, arg string, cfg *config.Config) (*moduleSource, error) {
	if isModuleFile(arg) {
		wasm, err := os.ReadFile(arg)
		if err != nil {
			return nil, err
		}
		return &moduleSource{wasm: wasm, name: strings.TrimSuffix(filepath.Base(arg), ".wasm"), version: "file"}, nil
	}
	name, ver, _ := strings.Cut(arg, "@")
	if err := modulestore.CheckName(name); err != nil {
		return nil, fmt.Errorf("%q is neither a module file nor a stored module's NAME[@vN]: %w", arg, err)
	}
	v, err := parseVersion("version", ver)
	if err != nil {
		return nil, err
	}
	nc, js, err := connect(cfg)
	if err != nil {
		return nil, fmt.Errorf("fetching module %s from the module store (--runtime-config names the runtime): %w", arg, err)
	}
	defer nc.Close()
	ctx, cancel := opContext(ctx)
	defer cancel()
	st, err := modulestore.Bind(ctx, js, modulestore.Options{Replicas: cfg.Streams.Replicas})
	if err != nil {
		return nil, fmt.Errorf("fetching module %s: %w (has a module been pushed to this runtime?)", arg, err)
	}
	m, wasm, err := st.Get(ctx, name, v)
	if err != nil {
		return nil, fmt.Errorf("fetching module %s: %w", arg, err)
	}
	return &moduleSource{wasm: wasm, name: m.Name, version: m.VersionString()}, nil
}

// runLine is one line of `module run --json`: a call's result.
type runLine struct {
	Kind        string          `json:"kind"`
	Decision    json.RawMessage `json:"decision,omitempty"`
	Error       string          `json:"error,omitempty"`
	Breach      string          `json:"breach,omitempty"`
	Function    string          `json:"function,omitempty"`
	Fuel        int64           `json:"fuel"`
	WallTimeNs  int64           `json:"wall_time_ns"`
	MemoryPages uint32          `json:"memory_pages"`
	Logs        []string        `json:"logs"`
}

// inputErrorLine is the line of `module run --json` for an input that
// could not be read.
type inputErrorLine struct {
	Error string `json:"error"`
}

type moduleRunFlags struct {
	kind, input, config, runtimeConfig string
	json                               bool
	fuel                               int64
	wallTime                           time.Duration
	memoryPages                        uint32
}

func newModuleRunCmd() *cobra.Command {
	var f moduleRunFlags
	cmd := &cobra.Command{
		Use:   "run <file.wasm|NAME[@vN]> --input FILE|- [--kind KIND] [--config FILE|JSON]",
		Short: "Run a module's decisions locally, under the real engine and limits: prints each decision, its fuel, wall time, memory and the guest's logs",
		Long: `Run a module locally on one or more inputs, each a JSON input record
(docs/abi.md, "Inputs as JSON"), and print each decision with the fuel it
used, its wall time, the instance's memory size and what the guest logged.

The module is a .wasm file, or NAME or NAME@vN of the module store of the
runtime named by --runtime-config (fetched and verified as the runtime
does). An argument that is an existing path, ends in .wasm or holds a '/'
is a file.

--input is a file, or - for standard input, holding one or more JSON input
objects (separated by white space). Each runs as one call, with --config in
its "config" unless it sets one itself.

NOTE: on this command --config is the module's config (JSON, as in a
route), not the runtime's YAML config; that one is --runtime-config (-c).

With --json each input gives exactly one line on stdout, written as soon
as the call ends (so a program can drive the command through pipes):
  {"kind":"retry","decision":{...},"fuel":N,"wall_time_ns":N,"memory_pages":N,"logs":[...]}
  {"kind":"retry","error":"...","breach":"trap","function":"main.decide","fuel":N,"wall_time_ns":N,"memory_pages":N,"logs":[...]}
  {"error":"input 3: ..."}   (an input that could not be read)
The command goes on after a failed call or an unreadable input, and ends
with exit status 0 when every call succeeded, 1 otherwise. A stream that is
not JSON at all stops it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runModule(cmd, args[0], &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kind, "kind", "", "the kind to call: retry, fallback, stub or classify (default: the module's only kind)")
	fl.StringVar(&f.input, "input", "", "file of JSON input records, or - for standard input (required)")
	fl.StringVar(&f.config, "config", "", moduleConfigUsage)
	fl.BoolVar(&f.json, "json", false, "print one JSON line per input (see above)")
	fl.Int64Var(&f.fuel, "fuel", 0, "fuel limit per call (default: modules.limits.fuel of the runtime config, 50000000)")
	fl.DurationVar(&f.wallTime, "wall-time", 0, "wall-time limit per call (default: modules.limits.wall_time, 50ms)")
	fl.Uint32Var(&f.memoryPages, "memory-pages", 0, "memory limit in 64 KiB pages (default: modules.limits.memory_pages, 512)")
	addRuntimeConfigFlag(cmd, &f.runtimeConfig)
	_ = cmd.MarkFlagRequired("input")
	return cmd
}

func runModule(cmd *cobra.Command, arg string, f *moduleRunFlags) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	var kind engine.Kind
	if f.kind != "" {
		var err error
		if kind, err = parseKind(f.kind); err != nil {
			return fmt.Errorf("--kind: %w", err)
		}
	}
	if f.fuel < 0 {
		return errors.New("--fuel must be positive")
	}
	modCfg, err := readModuleConfig(f.config)
	if err != nil {
		return err
	}
	cfg, err := loadRuntimeConfig(f.runtimeConfig)
	if err != nil {
		return err
	}
	var in io.Reader
	if f.input == "-" {
		in = cmd.InOrStdin()
	} else {
		file, err := os.Open(f.input)
		if err != nil {
			return fmt.Errorf("--input: %w", err)
		}
		defer file.Close()
		in = file
	}
	src, err := loadModuleSource(ctx, arg, cfg)
	if err != nil {
		return err
	}

	l := cfg.Modules.Limits
	lim := engine.Limits{Fuel: int64(l.Fuel), WallTime: l.WallTime, MemoryPages: l.MemoryPages, OutputBytes: l.OutputBytes}
	if f.fuel > 0 {
		lim.Fuel = f.fuel
	}
	if f.wallTime > 0 {
		lim.WallTime = f.wallTime
	}
	if f.memoryPages > 0 {
		lim.MemoryPages = f.memoryPages
	}
	lim = lim.WithDefaults()
	eng, err := engine.New(ctx, engine.Options{CacheDir: cfg.Modules.CacheDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PoolSize: 1, QuarantineAfter: math.MaxInt})
	if err != nil {
		return err
	}
	defer func() { _ = eng.Close(context.Background()) }()
	m, err := eng.Load(ctx, engine.LoadSpec{Name: src.name, Version: src.version, Wasm: src.wasm, Limits: lim, Deterministic: true})
	if err != nil {
		return fmt.Errorf("%s: %w", arg, err)
	}
	defer m.Close(context.Background())
	exported := m.Info().Kinds
	switch {
	case kind == "" && len(exported) == 1:
		kind = exported[0]
	case kind == "":
		return fmt.Errorf("%s exports several kinds (%s): pass --kind", arg, kindNames(exported))
	case !slices.Contains(exported, kind):
		return fmt.Errorf("--kind %s: %s does not export %s; it exports %s", kind, arg, kind.Export(), kindNames(exported))
	}

	out := cmd.OutOrStdout()
	dec := json.NewDecoder(in)
	failed, n := 0, 0
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		n++
		if err != nil {
			// Not JSON: the stream cannot be resynchronised.
			msg := fmt.Sprintf("input %d: not JSON: %v", n, err)
			if f.json {
				writeJSONLine(out, inputErrorLine{Error: msg})
			}
			return fmt.Errorf("--input %s: %s (inputs are JSON objects, see docs/abi.md \"Inputs as JSON\")", inputName(f.input), msg)
		}
		var input abi.Input
		if err := json.Unmarshal(raw, &input); err != nil {
			failed++
			msg := fmt.Sprintf("input %d: %v", n, err)
			if f.json {
				writeJSONLine(out, inputErrorLine{Error: msg})
			} else {
				fmt.Fprintf(out, "input %d: error: %v\n", n, err)
			}
			continue
		}
		if len(input.Config) == 0 {
			input.Config = modCfg
		}
		decision := engine.NewOutput(kind)
		st, err := m.Run(ctx, kind, &input, engine.Limits{}, decision)
		if err != nil {
			failed++
		}
		if f.json {
			writeJSONLine(out, resultLine(kind, decision, st, err))
		} else {
			printResult(out, n, kind, decision, st, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("--input %s: no input (want one or more JSON input objects, see docs/abi.md \"Inputs as JSON\")", inputName(f.input))
	}
	if failed > 0 {
		if f.json {
			return &codeError{code: exitError} // the lines said it
		}
		return withCode(exitError, "%d of %d inputs failed", failed, n)
	}
	return nil
}

func inputName(p string) string {
	if p == "-" {
		return "(standard input)"
	}
	return p
}

// logLines are the guest's log messages, then its stdout and stderr.
func logLines(st engine.CallStats) []string {
	lines := make([]string, 0, len(st.Logs)+len(st.Output))
	lines = append(lines, st.Logs...)
	return append(lines, st.Output...)
}

func resultLine(kind engine.Kind, decision engine.Output, st engine.CallStats, err error) runLine {
	l := runLine{Kind: string(kind), Fuel: st.Fuel, WallTimeNs: st.WallTime.Nanoseconds(), MemoryPages: st.MemoryPages, Logs: logLines(st)}
	if err != nil {
		l.Error = err.Error()
		var be *engine.BreachError
		if errors.As(err, &be) {
			l.Breach, l.Function = string(be.Kind), be.Function
		}
		return l
	}
	b, merr := json.Marshal(decision)
	if merr != nil { // cannot happen: a decoded decision marshals
		l.Error = "printing the decision: " + merr.Error()
		return l
	}
	l.Decision = b
	return l
}

// writeJSONLine writes v and a newline in one write: a reader of a pipe
// gets the whole line at once.
func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	_, _ = w.Write(append(b, '\n'))
}

func printResult(w io.Writer, n int, kind engine.Kind, decision engine.Output, st engine.CallStats, err error) {
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "input %d: %s failed: %v\n", n, kind.Export(), err)
	} else {
		d, _ := json.MarshalIndent(decision, "", "  ")
		fmt.Fprintf(&b, "input %d: %s decision:\n%s\n", n, kind, d)
	}
	fmt.Fprintf(&b, "fuel:          %d\n", st.Fuel)
	fmt.Fprintf(&b, "wall time:     %v\n", st.WallTime)
	fmt.Fprintf(&b, "memory pages:  %d (%.1f MiB)\n", st.MemoryPages, float64(st.MemoryPages)/16)
	lines := logLines(st)
	if len(lines) == 0 {
		b.WriteString("logs:          none\n")
	} else {
		b.WriteString("logs:\n")
		for _, l := range lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	_, _ = io.WriteString(w, b.String())
}
