package sdktest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// RuntimeEnv is the environment variable naming the runtime binary when
// Options.Runtime is empty.
const RuntimeEnv = "BREAKWATER_RUNTIME"

// RuntimePackage is the runtime's command, built when neither
// Options.Runtime nor RuntimeEnv names a binary.
const RuntimePackage = "github.com/breakwater-dev/breakwater/cmd/runtime"

// DefaultCallTimeout bounds a call whose context has no deadline (the first
// call of a kind includes starting the runtime and compiling the module).
const DefaultCallTimeout = 2 * time.Minute

// Options configure a Module. The zero value runs the module under the
// runtime's default limits (config modules.limits).
type Options struct {
	// Runtime is the path of the runtime binary; "" means the environment
	// variable BREAKWATER_RUNTIME, else a build of RuntimePackage (see the
	// package documentation).
	Runtime string
	// Config is the route's configuration of the module (JSON), handed to
	// every call whose Input.Config is empty. A config travels to the
	// runtime as a JSON value, and reaches the module compacted (no
	// insignificant white space).
	Config []byte
	// Fuel is the instruction budget of one call; 0 means the runtime's
	// default.
	Fuel int64
	// WallTime is the wall-clock limit of one call; 0 means the runtime's
	// default.
	WallTime time.Duration
	// MemoryPages caps the module's memory in 64 KiB pages; 0 means the
	// runtime's default.
	MemoryPages uint32
}

// Stats measure one call, as the engine reported it.
type Stats struct {
	// Fuel is the fuel the call was charged.
	Fuel int64
	// WallTime is how long the call took in the engine.
	WallTime time.Duration
	// MemoryPages is the module's memory after the call, in 64 KiB pages.
	MemoryPages uint32
	// Logs are what the module logged during the call (guest.Log), one
	// "LEVEL message" line each.
	Logs []string
}

// BreachKind says which limit or rule of the engine a call broke.
type BreachKind string

// The breach kinds of the engine.
const (
	BreachFuel           BreachKind = "fuel"             // the call used up its fuel
	BreachDeadline       BreachKind = "deadline"         // the call ran past its wall time
	BreachMemory         BreachKind = "memory"           // the module's memory grew past its limit
	BreachTrap           BreachKind = "trap"             // the module trapped (a Go guest's panic, for one)
	BreachBadOutput      BreachKind = "bad_output"       // the output record could not be decoded
	BreachOutputTooLarge BreachKind = "output_too_large" // the output record is over the limit
	BreachABI            BreachKind = "abi"              // the module broke the ABI (a kind it does not export, say)
)

// BreachError is a call the engine reported as a breach: the runtime would
// have applied the route's native policy instead.
type BreachError struct {
	Kind BreachKind
	// Function is the guest function running when a trap hit ("" when
	// unknown).
	Function string
	// Message is the engine's error message.
	Message string
}

func (e *BreachError) Error() string {
	return "sdktest: " + e.Message
}

// Module is a built policy module, run by the runtime's `module run`
// command. Its methods are safe for concurrent use.
type Module struct {
	path    string
	runtime string
	opts    Options
	exports []string

	mu      sync.Mutex
	runners map[string]*runner
	closed  bool
}

// Load prepares the module in the file wasmPath: it reads the module's
// exports, and finds the runtime binary (building it if need be; see the
// package documentation). The runtime processes start on the first call of
// each kind; Close stops them.
func Load(ctx context.Context, wasmPath string, opts Options) (*Module, error) {
	b, err := os.ReadFile(wasmPath)
	if err != nil {
		return nil, fmt.Errorf("sdktest: %w", err)
	}
	exports, err := wasmExports(b)
	if err != nil {
		return nil, fmt.Errorf("sdktest: %s: %w", wasmPath, err)
	}
	rt, err := findRuntime(ctx, opts.Runtime)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(wasmPath)
	if err != nil {
		return nil, fmt.Errorf("sdktest: %w", err)
	}
	return &Module{path: abs, runtime: rt, opts: opts, exports: exports, runners: make(map[string]*runner)}, nil
}

// Path returns the absolute path of the module's file.
func (m *Module) Path() string { return m.path }

// Runtime returns the path of the runtime binary that runs the module.
func (m *Module) Runtime() string { return m.runtime }

// Exports returns the names of the functions the module exports, sorted.
func (m *Module) Exports() []string { return slices.Clone(m.exports) }

// Kinds returns the policy kinds the module exports, sorted: any of
// "classify", "fallback", "retry", "stub".
func (m *Module) Kinds() []string {
	var kinds []string
	for _, k := range []string{"classify", "fallback", "retry", "stub"} {
		if slices.Contains(m.exports, "bw_"+k) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// Close stops the module's runtime processes. Calls after Close fail.
func (m *Module) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	var errs []error
	for _, r := range m.runners {
		errs = append(errs, r.close())
	}
	clear(m.runners)
	return errors.Join(errs...)
}

// Retry makes one retry decision (bw_retry).
func (m *Module) Retry(ctx context.Context, in *abi.Input) (abi.RetryDecision, Stats, error) {
	var d abi.RetryDecision
	st, err := m.Call(ctx, "retry", in, &d)
	return d, st, err
}

// Fallback makes one fallback decision (bw_fallback).
func (m *Module) Fallback(ctx context.Context, in *abi.Input) (abi.FallbackDecision, Stats, error) {
	var d abi.FallbackDecision
	st, err := m.Call(ctx, "fallback", in, &d)
	return d, st, err
}

// Stub makes one stub (bw_stub).
func (m *Module) Stub(ctx context.Context, in *abi.Input) (abi.Stub, Stats, error) {
	var s abi.Stub
	st, err := m.Call(ctx, "stub", in, &s)
	return s, st, err
}

// Classify makes one classify decision (bw_classify).
func (m *Module) Classify(ctx context.Context, in *abi.Input) (abi.ClassifyDecision, Stats, error) {
	var d abi.ClassifyDecision
	st, err := m.Call(ctx, "classify", in, &d)
	return d, st, err
}

// Call runs one call of kind ("retry", "fallback", "stub" or "classify")
// with in, and decodes the decision (JSON) into out, a pointer to the
// kind's abi record. Retry, Fallback, Stub and Classify are the typed forms.
//
// The call is bounded by ctx (by DefaultCallTimeout when ctx has no
// deadline): when ctx ends first, or the runtime process dies, the process
// is stopped and the next call of the kind starts a new one.
func (m *Module) Call(ctx context.Context, kind string, in *abi.Input, out any) (Stats, error) {
	if in == nil {
		return Stats{}, errors.New("sdktest: nil Input")
	}
	switch kind {
	case "retry", "fallback", "stub", "classify":
	default:
		return Stats{}, fmt.Errorf("sdktest: unknown policy kind %q", kind)
	}
	if !slices.Contains(m.exports, "bw_"+kind) {
		// What the engine would answer, without starting a process.
		return Stats{}, &BreachError{Kind: BreachABI, Message: fmt.Sprintf("%s: abi breach: the module does not export bw_%s", m.path, kind)}
	}
	if len(in.Config) == 0 && len(m.opts.Config) > 0 {
		c := *in
		c.Config = m.opts.Config
		in = &c
	}
	line, err := json.Marshal(in)
	if err != nil {
		return Stats{}, fmt.Errorf("sdktest: encoding the input: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	r, err := m.runner(kind)
	if err != nil {
		return Stats{}, err
	}
	res, err := r.call(ctx, append(line, '\n'))
	if err != nil {
		m.drop(kind, r)
		return Stats{}, err
	}
	st := Stats{Fuel: res.Fuel, WallTime: time.Duration(res.WallTimeNs), MemoryPages: res.MemoryPages, Logs: res.Logs}
	if res.Error != "" {
		if res.Breach != "" {
			return st, &BreachError{Kind: BreachKind(res.Breach), Function: res.Function, Message: res.Error}
		}
		return st, fmt.Errorf("sdktest: %s", res.Error)
	}
	if len(res.Decision) == 0 || string(res.Decision) == "null" {
		return st, fmt.Errorf("sdktest: runtime module run answered neither a decision nor an error: %s", res.raw)
	}
	if err := json.Unmarshal(res.Decision, out); err != nil {
		return st, fmt.Errorf("sdktest: decoding the %s decision %s: %w", kind, res.Decision, err)
	}
	return st, nil
}

// runner returns the process serving kind, starting it if need be.
func (m *Module) runner(kind string) (*runner, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("sdktest: module closed")
	}
	if r := m.runners[kind]; r != nil {
		return r, nil
	}
	args := []string{"module", "run", m.path, "--kind", kind, "--input", "-", "--json"}
	if m.opts.Fuel > 0 {
		args = append(args, "--fuel", strconv.FormatInt(m.opts.Fuel, 10))
	}
	if m.opts.WallTime > 0 {
		args = append(args, "--wall-time", m.opts.WallTime.String())
	}
	if m.opts.MemoryPages > 0 {
		args = append(args, "--memory-pages", strconv.FormatUint(uint64(m.opts.MemoryPages), 10))
	}
	r, err := startRunner(m.runtime, args)
	if err != nil {
		return nil, err
	}
	m.runners[kind] = r
	return r, nil
}

// drop stops r after a failed exchange, so that the next call starts anew.
func (m *Module) drop(kind string, r *runner) {
	m.mu.Lock()
	if m.runners[kind] == r {
		delete(m.runners, kind)
	}
	m.mu.Unlock()
	r.close()
}

// result is one line of `runtime module run --json`.
type result struct {
	Kind        string          `json:"kind"`
	Decision    json.RawMessage `json:"decision"`
	Error       string          `json:"error"`
	Breach      string          `json:"breach"`
	Function    string          `json:"function"`
	Fuel        int64           `json:"fuel"`
	WallTimeNs  int64           `json:"wall_time_ns"`
	MemoryPages uint32          `json:"memory_pages"`
	Logs        []string        `json:"logs"`
	raw         []byte
}

// runner is one `runtime module run` process: it reads JSON inputs on its
// standard input and answers one JSON line per input on its output.
type runner struct {
	cmdline string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan []byte   // the output lines, read by a goroutine; closed at the end
	exited  chan struct{} // closed once the output ended and the process exited
	stderr  *tailBuffer
	waitErr error // set before exited is closed

	mu        sync.Mutex // serializes calls
	closeOnce sync.Once
}

func startRunner(bin string, args []string) (*runner, error) {
	cmd := exec.Command(bin, args...)
	r := &runner{cmdline: "runtime " + strings.Join(args, " "), cmd: cmd,
		lines: make(chan []byte), exited: make(chan struct{}), stderr: &tailBuffer{max: 16 << 10}}
	cmd.Stderr = r.stderr
	cmd.WaitDelay = 5 * time.Second
	var err error
	if r.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("sdktest: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("sdktest: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sdktest: starting %s: %w", bin, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
		for sc.Scan() {
			r.lines <- bytes.Clone(sc.Bytes())
		}
		close(r.lines)
		// Drain what is left so that Wait can return.
		_, _ = io.Copy(io.Discard, stdout)
		r.waitErr = cmd.Wait()
		close(r.exited)
	}()
	return r, nil
}

func (r *runner) call(ctx context.Context, line []byte) (*result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.exited:
		return nil, r.exitError()
	default:
	}
	werr := make(chan error, 1)
	go func() { _, err := r.stdin.Write(line); werr <- err }()
	for {
		select {
		case err := <-werr:
			if err != nil {
				r.kill()
				<-r.exited
				return nil, r.exitError()
			}
			werr = nil
		case out, ok := <-r.lines:
			if !ok {
				select {
				case <-r.exited:
					return nil, r.exitError()
				case <-ctx.Done():
					r.kill()
					return nil, fmt.Errorf("sdktest: %s: closed its output: %w%s", r.cmdline, context.Cause(ctx), r.stderrNote())
				}
			}
			// Skip whatever is not a JSON object (the runtime writes its
			// own messages to standard error, but be lenient).
			trimmed := bytes.TrimSpace(out)
			if len(trimmed) == 0 || trimmed[0] != '{' {
				continue
			}
			var res result
			if err := json.Unmarshal(trimmed, &res); err != nil {
				r.kill()
				return nil, fmt.Errorf("sdktest: %s: unreadable answer %q: %w", r.cmdline, trimmed, err)
			}
			res.raw = trimmed
			return &res, nil
		case <-r.exited:
			return nil, r.exitError()
		case <-ctx.Done():
			r.kill()
			return nil, fmt.Errorf("sdktest: %s: no answer: %w%s", r.cmdline, context.Cause(ctx), r.stderrNote())
		}
	}
}

func (r *runner) exitError() error {
	return fmt.Errorf("sdktest: %s: the process ended (%v) without answering%s", r.cmdline, r.waitErr, r.stderrNote())
}

func (r *runner) stderrNote() string {
	if s := strings.TrimSpace(r.stderr.String()); s != "" {
		return "; its standard error:\n" + s
	}
	return ""
}

func (r *runner) kill() {
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
	}
}

// close ends the process: it closes its input (the process then exits),
// and kills it if it has not exited within a few seconds.
func (r *runner) close() error {
	var err error
	r.closeOnce.Do(func() {
		_ = r.stdin.Close()
		// Unblock the reader goroutine should an answer be pending.
		go func() {
			for range r.lines {
			}
		}()
		select {
		case <-r.exited:
		case <-time.After(5 * time.Second):
			r.kill()
			<-r.exited
		}
		var ee *exec.ExitError
		if r.waitErr != nil && !errors.As(r.waitErr, &ee) {
			err = r.waitErr
		}
	})
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
