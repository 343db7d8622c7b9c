package sdktest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// The export names of ABI v1.
const (
	ExportABIVersion = "bw_abi_version"
	ExportAlloc      = "bw_alloc"
	ExportRetry      = "bw_retry"
	ExportFallback   = "bw_fallback"
	ExportStub       = "bw_stub"
	ExportClassify   = "bw_classify"
	ExportInitialize = "_initialize"
)

// kindExports maps the kind names Kinds reports to their exports.
var kindExports = []struct{ kind, export string }{
	{"classify", ExportClassify},
	{"fallback", ExportFallback},
	{"retry", ExportRetry},
	{"stub", ExportStub},
}

// DefaultMaxOutput is the output size limit used when Options.MaxOutput is
// zero.
const DefaultMaxOutput = 1 << 20

// DefaultMaxCaptured is how many bytes of a module's standard output and
// error Module.Output keeps (the rest is counted and dropped).
const DefaultMaxCaptured = 64 << 10

// Options configure a Runtime. The zero value is usable.
type Options struct {
	// Rand is the source of the guest's random_get; nil means crypto/rand.
	// Pass a deterministic reader for reproducible jitter.
	Rand io.Reader
	// MaxOutput is the largest output record accepted, in bytes; zero means
	// DefaultMaxOutput.
	MaxOutput int
	// MemoryLimitPages caps each instance's memory in 64 KiB pages; zero
	// means wazero's default (4 GiB).
	MemoryLimitPages uint32
	// Interpreter selects wazero's interpreter instead of its compiler:
	// slower calls, much faster loading.
	Interpreter bool
}

// LogEntry is one call of bw_host.log.
type LogEntry struct {
	Level   int32  // log/slog levels: -4 debug, 0 info, 4 warn, 8 error
	Message string // the message bytes, as sent
}

// Runtime compiles modules (once per distinct binary) and instantiates them.
type Runtime struct {
	opts Options
	rt   wazero.Runtime

	mu       sync.Mutex
	compiled map[[32]byte]wazero.CompiledModule

	// instances maps each instance (api.Module) to its Module, for the
	// bw_host functions, which are told which instance calls them.
	instances sync.Map
}

// NewRuntime makes a wazero runtime with WASI preview 1 and the bw_host
// module instantiated.
func NewRuntime(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	cfg := wazero.NewRuntimeConfigCompiler()
	if opts.Interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	if opts.MemoryLimitPages > 0 {
		cfg = cfg.WithMemoryLimitPages(opts.MemoryLimitPages)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	r := &Runtime{opts: opts, rt: rt, compiled: make(map[[32]byte]wazero.CompiledModule)}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("sdktest: instantiating WASI: %w", err)
	}
	_, err := rt.NewHostModuleBuilder("bw_host").
		NewFunctionBuilder().
		WithFunc(func(ctx context.Context, mod api.Module, level, ptr, size uint32) {
			v, found := r.instances.Load(mod)
			if !found {
				return
			}
			m := v.(*Module)
			msg, ok := mod.Memory().Read(ptr, size)
			if !ok {
				m.logs = append(m.logs, LogEntry{Level: int32(level), Message: fmt.Sprintf("<bw_host.log: region [%d, +%d) out of memory>", ptr, size)})
				return
			}
			m.logs = append(m.logs, LogEntry{Level: int32(level), Message: string(msg)})
		}).
		WithParameterNames("level", "ptr", "len").
		Export("log").
		Instantiate(ctx)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("sdktest: instantiating bw_host: %w", err)
	}
	return r, nil
}

// Close releases the runtime and every module loaded from it.
func (r *Runtime) Close(ctx context.Context) error {
	return r.rt.Close(ctx)
}

// Load compiles wasm (or reuses an earlier compilation of the same bytes),
// instantiates it without running _start, and calls _initialize if the
// module exports it.
func (r *Runtime) Load(ctx context.Context, wasm []byte) (*Module, error) {
	cm, err := r.compile(ctx, wasm)
	if err != nil {
		return nil, err
	}
	m := &Module{rt: r, maxOutput: r.opts.MaxOutput}
	m.out.max = DefaultMaxCaptured
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(). // a reactor: _initialize is called below
		WithStdout(&m.out).
		WithStderr(&m.out).
		WithRandSource(r.opts.Rand).
		WithSysWalltime().
		WithSysNanotime()
	mod, err := r.rt.InstantiateModule(ctx, cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("sdktest: instantiating module: %w", err)
	}
	m.mod = mod
	r.instances.Store(mod, m)
	if init := mod.ExportedFunction(ExportInitialize); init != nil {
		if _, err := init.Call(ctx); err != nil {
			m.Close(ctx)
			return nil, fmt.Errorf("sdktest: %s: %w (output: %q)", ExportInitialize, err, m.Output())
		}
	}
	m.alloc = mod.ExportedFunction(ExportAlloc)
	if m.alloc == nil {
		m.Close(ctx)
		return nil, fmt.Errorf("sdktest: module does not export %s", ExportAlloc)
	}
	if mod.Memory() == nil {
		m.Close(ctx)
		return nil, errors.New("sdktest: module does not export its memory")
	}
	return m, nil
}

func (r *Runtime) compile(ctx context.Context, wasm []byte) (wazero.CompiledModule, error) {
	sum := sha256.Sum256(wasm)
	r.mu.Lock()
	defer r.mu.Unlock()
	if cm, ok := r.compiled[sum]; ok {
		return cm, nil
	}
	cm, err := r.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("sdktest: compiling module: %w", err)
	}
	r.compiled[sum] = cm
	return cm, nil
}

// Module is one instance of a policy module.
type Module struct {
	rt        *Runtime
	mod       api.Module
	alloc     api.Function
	maxOutput int
	logs      []LogEntry
	out       capped
	in        []byte    // reusable encoding buffer
	stack     [2]uint64 // reusable call stack
	// funcs caches the exported functions: wazero makes a new call engine
	// (and stack) for every ExportedFunction call.
	funcs map[string]api.Function
}

// Close releases the instance.
func (m *Module) Close(ctx context.Context) error {
	m.rt.instances.Delete(m.mod)
	return m.mod.Close(ctx)
}

// ABIVersion calls bw_abi_version.
func (m *Module) ABIVersion(ctx context.Context) (uint32, error) {
	f := m.mod.ExportedFunction(ExportABIVersion)
	if f == nil {
		return 0, fmt.Errorf("sdktest: module does not export %s", ExportABIVersion)
	}
	res, err := f.Call(ctx)
	if err != nil {
		return 0, fmt.Errorf("sdktest: %s: %w", ExportABIVersion, err)
	}
	return uint32(res[0]), nil
}

// Kinds returns the policy kinds the module exports, sorted: any of
// "classify", "fallback", "retry", "stub".
func (m *Module) Kinds() []string {
	var kinds []string
	for _, k := range kindExports {
		if m.mod.ExportedFunction(k.export) != nil {
			kinds = append(kinds, k.kind)
		}
	}
	return kinds
}

// Exports returns the names of all the module's exported functions, sorted.
func (m *Module) Exports() []string {
	var names []string
	for name := range m.mod.ExportedFunctionDefinitions() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Logs returns the messages the module sent to bw_host.log so far.
func (m *Module) Logs() []LogEntry { return m.logs }

// Output returns what the module wrote to standard output and error so far
// (at most DefaultMaxCaptured bytes).
func (m *Module) Output() string { return m.out.String() }

// Retry calls bw_retry with in and decodes the RetryDecision.
func (m *Module) Retry(ctx context.Context, in *abi.Input) (abi.RetryDecision, error) {
	var d abi.RetryDecision
	out, err := m.call(ctx, ExportRetry, in)
	if err == nil {
		err = d.UnmarshalABI(out)
	}
	if err != nil {
		return d, fmt.Errorf("sdktest: %s: %w", ExportRetry, err)
	}
	return d, nil
}

// Fallback calls bw_fallback with in and decodes the FallbackDecision.
func (m *Module) Fallback(ctx context.Context, in *abi.Input) (abi.FallbackDecision, error) {
	var d abi.FallbackDecision
	out, err := m.call(ctx, ExportFallback, in)
	if err == nil {
		err = d.UnmarshalABI(out)
	}
	if err != nil {
		return d, fmt.Errorf("sdktest: %s: %w", ExportFallback, err)
	}
	return d, nil
}

// Stub calls bw_stub with in and decodes the Stub.
func (m *Module) Stub(ctx context.Context, in *abi.Input) (abi.Stub, error) {
	var s abi.Stub
	out, err := m.call(ctx, ExportStub, in)
	if err == nil {
		err = s.UnmarshalABI(out)
	}
	if err != nil {
		return s, fmt.Errorf("sdktest: %s: %w", ExportStub, err)
	}
	return s, nil
}

// Classify calls bw_classify with in and decodes the ClassifyDecision.
func (m *Module) Classify(ctx context.Context, in *abi.Input) (abi.ClassifyDecision, error) {
	var d abi.ClassifyDecision
	out, err := m.call(ctx, ExportClassify, in)
	if err == nil {
		err = d.UnmarshalABI(out)
	}
	if err != nil {
		return d, fmt.Errorf("sdktest: %s: %w", ExportClassify, err)
	}
	return d, nil
}

func (m *Module) call(ctx context.Context, export string, in *abi.Input) ([]byte, error) {
	m.in = in.MarshalABI(m.in[:0])
	return m.CallRaw(ctx, export, m.in)
}

// CallRaw runs the calling sequence of ABI v1 with an already encoded input
// (which need not be valid: use it to test how a module treats bad input):
// bw_alloc(len), write input at the returned address, call export(ptr, len),
// and return the output region. The returned slice is a view of the guest's
// memory, valid until the next call into the module.
//
// An error means the call did not produce an output: a trap (which includes
// a Go guest's panic, reported as an exit), an output region outside memory,
// or an output larger than the limit. After a trap the instance is unusable.
func (m *Module) CallRaw(ctx context.Context, export string, input []byte) ([]byte, error) {
	f, ok := m.funcs[export]
	if !ok {
		f = m.mod.ExportedFunction(export)
		if f == nil {
			return nil, fmt.Errorf("module does not export %s", export)
		}
		if m.funcs == nil {
			m.funcs = make(map[string]api.Function)
		}
		m.funcs[export] = f
	}
	stack := m.stack[:]
	stack[0] = uint64(uint32(len(input)))
	if err := m.alloc.CallWithStack(ctx, stack); err != nil {
		return nil, fmt.Errorf("%s(%d) trapped: %w%s", ExportAlloc, len(input), err, m.outputNote())
	}
	ptr := uint32(stack[0])
	if !m.mod.Memory().Write(ptr, input) {
		return nil, fmt.Errorf("%s returned %#x: no room for %d bytes there", ExportAlloc, ptr, len(input))
	}
	stack[0], stack[1] = uint64(ptr), uint64(uint32(len(input)))
	if err := f.CallWithStack(ctx, stack); err != nil {
		return nil, fmt.Errorf("trapped: %w%s", err, m.outputNote())
	}
	outPtr, outLen := uint32(stack[0]>>32), uint32(stack[0])
	if int(outLen) > m.maxOutput {
		return nil, fmt.Errorf("output of %d bytes exceeds the limit of %d", outLen, m.maxOutput)
	}
	out, ok := m.mod.Memory().Read(outPtr, outLen)
	if !ok {
		return nil, fmt.Errorf("output region [%#x, +%d) is outside memory", outPtr, outLen)
	}
	return out, nil
}

func (m *Module) outputNote() string {
	if s := m.Output(); s != "" {
		return " (module output: " + strings.TrimSpace(s) + ")"
	}
	return ""
}

// capped is an io.Writer keeping the first max bytes written to it.
type capped struct {
	buf     []byte
	max     int
	dropped int
}

func (c *capped) Write(p []byte) (int, error) {
	room := max(c.max-len(c.buf), 0)
	n := min(room, len(p))
	c.buf = append(c.buf, p[:n]...)
	c.dropped += len(p) - n
	return len(p), nil
}

func (c *capped) String() string {
	if c.dropped > 0 {
		return fmt.Sprintf("%s… (%d bytes dropped)", c.buf, c.dropped)
	}
	return string(c.buf)
}
