package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/internal/meter"
)

// LoadSpec names a module version to load.
type LoadSpec struct {
	Name, Version string
	Wasm          []byte
	// Limits are the module's default call limits (zero fields: defaults).
	// MemoryPages is fixed at load: it is compiled into the module.
	Limits Limits
	// Unmetered skips fuel instrumentation: no fuel or wall-time limit.
	// Only for measuring the metering's cost; never for uploaded modules.
	Unmetered bool
	// Deterministic runs every call on a fresh instance, warmed up the same
	// way, with fake clocks and seeded random numbers, so that a call's
	// fuel depends on its input alone. A pooled instance's fuel varies by a
	// few percent with the garbage collections earlier calls left due.
	// It costs an instantiation per call: for runtime module run and
	// replay, not for serving.
	Deterministic bool
}

// Module is a loaded module version: compiled once, with a pool of warm
// instances. Safe for concurrent use.
type Module struct {
	e             *Engine
	unmetered     bool
	deterministic bool
	sha256        string
	name          string
	version       string
	info          *Info
	limits        Limits
	compiled      wazero.CompiledModule

	pool    chan *instance
	tickets chan struct{} // one per instance that may exist
	calls   sync.WaitGroup

	mu               sync.Mutex
	closed           bool
	consecutive      int
	quarantinedUntil time.Time
}

type instance struct {
	mod   api.Module
	mem   api.Memory
	alloc api.Function
	fns   map[Kind]api.Function
	stdio *stdioWriter
	sl    *sleeper
	buf   []byte
}

type callStateKey struct{}

// callState is what a call's host functions know of it.
type callState struct {
	route, messageID string
	logs             []string // bw_host.log messages, for CallStats
	logBytes         int
}

// maxCallLogBytes caps the log messages a call keeps for CallStats (they
// are all logged).
const maxCallLogBytes = 16 << 10

func (cs *callState) keepLog(level slog.Level, msg string) {
	if cs.logBytes+len(msg) > maxCallLogBytes {
		return
	}
	cs.logBytes += len(msg)
	cs.logs = append(cs.logs, level.String()+" "+msg)
}

// CallStats measure one call (Module.Run).
type CallStats struct {
	// Fuel is the fuel the call was charged (0 when unmetered).
	Fuel int64
	// WallTime is the call's duration, from taking an instance to
	// reading its output.
	WallTime time.Duration
	// MemoryPages is the instance's memory size after the call, in
	// 64 KiB pages (0 when the call failed before it ran).
	MemoryPages uint32
	// Logs are the messages the guest logged with bw_host.log
	// ("LEVEL message"), Output the lines it wrote to stdout and stderr;
	// both capped (every one is logged).
	Logs, Output []string
}

// Load validates, instruments and compiles a module, and starts its first
// instance (so a module that cannot start fails here, not on first use).
func (e *Engine) Load(ctx context.Context, spec LoadSpec) (*Module, error) {
	lim := spec.Limits.WithDefaults()
	compiled, info, err := e.compile(ctx, spec.Wasm, lim.MemoryPages, spec.Unmetered)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(spec.Wasm)
	m := &Module{e: e, unmetered: spec.Unmetered, deterministic: spec.Deterministic, name: spec.Name, sha256: hex.EncodeToString(sum[:]), version: spec.Version, info: info, limits: lim, compiled: compiled,
		pool: make(chan *instance, e.o.PoolSize), tickets: make(chan struct{}, e.o.PoolSize)}
	for range e.o.PoolSize {
		m.tickets <- struct{}{}
	}
	<-m.tickets
	inst, err := m.newInstance(ctx)
	if err != nil {
		compiled.Close(ctx)
		return nil, err
	}
	m.pool <- inst
	return m, nil
}

// Name, Version and Info describe the module.
func (m *Module) Name() string    { return m.name }
func (m *Module) Version() string { return m.version }
func (m *Module) Info() *Info     { return m.info }

// SHA256 is the hex sha256 of the module's bytes as loaded.
func (m *Module) SHA256() string { return m.sha256 }

// Limits are the module's default call limits.
func (m *Module) Limits() Limits { return m.limits }

// newInstance instantiates the module and initialises and warms it up
// under limits.
func (m *Module) newInstance(ctx context.Context) (*instance, error) { return m.instantiate(ctx, true) }

func (m *Module) instantiate(ctx context.Context, warm bool) (*instance, error) {
	name := fmt.Sprintf("%s@%s#%d", m.name, m.version, m.e.seq.Add(1))
	stdio := &stdioWriter{log: m.e.log, module: m.name + "@" + m.version, cap: m.e.o.StdioCapBytes}
	lim := initLimits(m.limits)
	deadline := time.Now().Add(lim.WallTime)
	sl := &sleeper{}
	// The start section, if any, runs now: under the start-up limits.
	ictx, icall := m.beginInstantiate(ctx, sl, lim.Fuel, deadline)
	mod, err := m.e.rt.InstantiateModule(ictx, m.compiled, newModuleConfig(name, stdio, sl, m.deterministic))
	if _, err = icall.End(err); err != nil {
		if mod != nil {
			mod.Close(ctx)
		}
		detail := "the module cannot be instantiated: " + err.Error()
		if errors.Is(err, meter.ErrFuelExhausted) || errors.Is(err, meter.ErrDeadlineExceeded) {
			detail = fmt.Sprintf("the start function ran over the start-up limits (%d fuel, %v): %v", lim.Fuel, lim.WallTime, err)
		}
		return nil, &ValidationError{Rule: "instantiate", Detail: detail, Err: err}
	}
	inst := &instance{mod: mod, mem: mod.Memory(), alloc: mod.ExportedFunction("bw_alloc"), fns: map[Kind]api.Function{}, stdio: stdio, sl: sl}
	for _, k := range m.info.Kinds {
		inst.fns[k] = mod.ExportedFunction(k.Export())
	}
	fail := func(rule string, err error) (*instance, error) {
		mod.Close(ctx)
		return nil, &ValidationError{Rule: rule, Detail: err.Error(), Err: err}
	}
	if init := mod.ExportedFunction("_initialize"); init != nil {
		cctx, call, err := m.begin(ctx, inst, lim.Fuel, deadline)
		if err != nil {
			return fail("instrument", err)
		}
		_, callErr := init.Call(cctx)
		if _, err := call.End(callErr); err != nil {
			return fail("initialize", fmt.Errorf("_initialize failed: %w", err))
		}
	}
	cctx, call, err := m.begin(ctx, inst, lim.Fuel, deadline)
	if err != nil {
		return fail("instrument", err)
	}
	res, callErr := mod.ExportedFunction("bw_abi_version").Call(cctx)
	if _, err := call.End(callErr); err != nil {
		return fail("abi_version", fmt.Errorf("bw_abi_version failed: %w", err))
	}
	if v := int32(res[0]); v != abi.Version {
		return fail("abi_version", fmt.Errorf("the module speaks ABI version %d; this host supports %d (rebuild it with a matching guest SDK)", v, abi.Version))
	}
	m.info.ABIVersion = abi.Version
	// The warm-up runs under a few times the call limits, not the start-up
	// ones: a module that spins on the sample input should cost little.
	warmLim := Limits{Fuel: m.limits.Fuel * 4, WallTime: max(m.limits.WallTime*4, 200*time.Millisecond)}
	if warm && !m.warmUp(ctx, inst, warmLim, time.Now().Add(warmLim.WallTime)) {
		// The module cannot handle the sample input: start a clean instance
		// without the warm-up rather than keep one left mid-failure.
		mod.Close(ctx)
		return m.instantiate(ctx, false)
	}
	return inst, nil
}

// warmUp calls each kind once on its sample input (SampleInputFor), so a
// guest's lazy start-up work (a Go runtime's first allocations, say) is not
// charged to the first real call: fuel per input is then the same on every
// call.
func (m *Module) warmUp(ctx context.Context, inst *instance, lim Limits, deadline time.Time) bool {
	// What a guest logs on the sample input is not a decision: it goes to
	// debug level, marked as warm-up.
	ctx = context.WithValue(ctx, warmUpKey{}, true)
	inst.stdio.setWarmUp(true)
	defer inst.stdio.setWarmUp(false)
	for _, k := range m.info.Kinds {
		buf := SampleInputFor(k).MarshalABI(nil)
		cctx, call, err := m.begin(ctx, inst, lim.Fuel, deadline)
		if err != nil {
			return false
		}
		res, callErr := inst.alloc.Call(cctx, uint64(len(buf)))
		if callErr == nil {
			if !inst.mem.Write(uint32(res[0]), buf) {
				_, _ = call.End(nil)
				return false
			}
			_, callErr = inst.fns[k].Call(cctx, res[0], uint64(len(buf)))
		}
		if _, err := call.End(callErr); err != nil {
			return false
		}
	}
	inst.stdio.reset()
	return true
}

// acquire takes a warm instance, or makes one while the pool is not full,
// else waits (never past ctx).
func (m *Module) acquire(ctx context.Context) (*instance, error) {
	select {
	case inst := <-m.pool:
		return inst, nil
	default:
	}
	select {
	case inst := <-m.pool:
		return inst, nil
	case <-m.tickets:
		inst, err := m.newInstance(ctx)
		if err != nil {
			m.tickets <- struct{}{}
			return nil, err
		}
		return inst, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("module %s@%s: waiting for a free instance: %w", m.name, m.version, ctx.Err())
	}
}

// release returns inst to the pool; a deterministic module's instances
// serve one call each.
func (m *Module) release(inst *instance) {
	if m.deterministic {
		m.discard(context.Background(), inst)
		return
	}
	m.pool <- inst
}

// discard closes a breached instance; a new one is made on demand.
func (m *Module) discard(ctx context.Context, inst *instance) {
	inst.mod.Close(ctx)
	m.tickets <- struct{}{}
}

// call runs kind on in under lim and decodes the output with decode. A
// decoding failure is a bad_output breach, reported like any other.
func (m *Module) call(ctx context.Context, kind Kind, in *abi.Input, lim Limits, decode func([]byte) error) (CallStats, error) {
	t0 := time.Now()
	out, st, err := m.callInner(ctx, kind, in, lim)
	if err == nil {
		err = m.decode(kind, decode(out))
	}
	st.WallTime = time.Since(t0)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("breakwater.module", m.name), attribute.String("breakwater.module.version", m.version), attribute.Int64("breakwater.module.fuel", st.Fuel))
		if err != nil {
			span.SetAttributes(attribute.String("breakwater.module.error", err.Error()))
		}
	}
	if m.e.o.OnCall != nil {
		var be *BreachError
		rep := CallReport{Module: m.name, Version: m.version, Kind: string(kind), Duration: st.WallTime, Fuel: st.Fuel, Err: err}
		if errors.As(err, &be) {
			rep.Breach = be.Kind
		}
		m.e.o.OnCall(rep)
	}
	return st, err
}

func (m *Module) callInner(ctx context.Context, kind Kind, in *abi.Input, lim Limits) ([]byte, CallStats, error) {
	var st CallStats
	if err := m.admit(); err != nil {
		return nil, st, err
	}
	defer m.calls.Done()
	lim = m.limits.merge(lim)
	inst, err := m.acquire(ctx)
	if err != nil {
		return nil, st, err
	}
	fn := inst.fns[kind]
	if fn == nil {
		m.release(inst)
		return nil, st, &BreachError{Kind: BreachABI, Module: m.name, Version: m.version, Export: kind.Export(), Err: fmt.Errorf("the module does not export %s", kind.Export())}
	}
	inst.stdio.begin(in.Route, in.MessageID)
	deadline := time.Now().Add(lim.WallTime)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	inst.buf = in.MarshalABI(inst.buf[:0])
	cs := &callState{route: in.Route, messageID: in.MessageID}
	cctx, call, err := m.begin(context.WithValue(ctx, callStateKey{}, cs), inst, lim.Fuel, deadline)
	if err != nil {
		m.discard(ctx, inst)
		return nil, st, err
	}
	done := func(used int64) {
		st.Fuel = used
		st.MemoryPages = inst.mem.Size() / 65536
		st.Logs = cs.logs
		st.Output, _ = inst.stdio.output()
	}
	breach := func(k BreachKind, err error) ([]byte, CallStats, error) {
		used, _ := call.End(nil)
		done(used)
		be := &BreachError{Kind: k, Module: m.name, Version: m.version, Export: kind.Export(), Err: err}
		if k == BreachTrap {
			be.Function = guestFunction(err)
			_, be.Panic = inst.stdio.output()
		}
		m.discard(ctx, inst)
		m.breached()
		return nil, st, be
	}
	res, callErr := inst.alloc.Call(cctx, uint64(len(inst.buf)))
	if callErr == nil {
		ptr := uint32(res[0])
		if !inst.mem.Write(ptr, inst.buf) {
			return breach(BreachBadOutput, fmt.Errorf("bw_alloc(%d) returned %d, outside the module's memory", len(inst.buf), ptr))
		}
		res, callErr = fn.Call(cctx, uint64(ptr), uint64(len(inst.buf)))
	}
	used, err := call.End(callErr)
	if err != nil {
		return breach(m.classify(inst, call, lim, err), err)
	}
	done(used)
	packed := res[0]
	outPtr, outLen := uint32(packed>>32), uint32(packed)
	if outLen > lim.OutputBytes {
		return breach(BreachOutputTooLarge, fmt.Errorf("output of %d bytes exceeds the limit of %d", outLen, lim.OutputBytes))
	}
	b, ok := inst.mem.Read(outPtr, outLen)
	if !ok {
		return breach(BreachBadOutput, fmt.Errorf("output [%d, %d+%d) is outside the module's memory", outPtr, outPtr, outLen))
	}
	out := append([]byte(nil), b...)
	m.release(inst)
	return out, st, nil
}

// classify names the breach behind a failed call. A refused memory.grow
// (recorded exactly by the instrumentation) comes first: a Go guest whose
// allocation failed goes on to print "fatal error: out of memory" with a
// stack trace, which can spend the fuel or the time before it exits, but
// the memory limit is what it broke.
func (m *Module) classify(inst *instance, call meterCall, lim Limits, err error) BreachKind {
	if mc, ok := call.(*meter.Call); ok && mc.MemoryRefused() {
		return BreachMemory
	}
	switch {
	case errors.Is(err, meter.ErrFuelExhausted):
		return BreachFuel
	case errors.Is(err, meter.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return BreachDeadline
	case inst.stdio.outOfMemory():
		return BreachMemory
	}
	if _, metered := call.(*meter.Call); !metered {
		if size := uint64(inst.mem.Size()); lim.MemoryPages > 0 && size*4 >= uint64(lim.MemoryPages)*65536*3 {
			// Unmetered (benchmarks only): no grow tracking, so a trap
			// with the memory near the limit is taken for a refused grow.
			return BreachMemory
		}
	}
	return BreachTrap // unreachable, stack overflow, out-of-bounds access, proc_exit, a Go panic
}

// merge fills zero fields of call limits from the module's.
func (l Limits) merge(call Limits) Limits {
	if call.Fuel > 0 {
		l.Fuel = call.Fuel
	}
	if call.WallTime > 0 {
		l.WallTime = call.WallTime
	}
	if call.OutputBytes > 0 {
		l.OutputBytes = call.OutputBytes
	}
	return l
}

// admit refuses calls while quarantined or closed, and counts the call in.
func (m *Module) admit() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("module %s@%s: %w", m.name, m.version, ErrClosed)
	}
	if now := time.Now(); now.Before(m.quarantinedUntil) {
		return fmt.Errorf("module %s@%s: %w (for another %v)", m.name, m.version, ErrQuarantined, m.quarantinedUntil.Sub(now).Round(time.Millisecond))
	}
	m.calls.Add(1)
	return nil
}

func (m *Module) breached() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.consecutive++
	if m.consecutive >= m.e.o.QuarantineAfter {
		m.quarantinedUntil = time.Now().Add(m.e.o.QuarantineFor)
		m.e.log.Warn("module quarantined after repeated breaches", slog.String("module", m.name), slog.String("version", m.version),
			slog.Int("breaches", m.consecutive), slog.Duration("for", m.e.o.QuarantineFor))
	}
}

// Quarantined reports whether calls currently fail fast.
func (m *Module) Quarantined() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Now().Before(m.quarantinedUntil)
}

// Close waits (up to 10s) for calls in flight, then frees the module. Calls
// after Close fail with ErrClosed.
func (m *Module) Close(ctx context.Context) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.calls.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		m.e.log.Warn("closing module with calls still in flight", slog.String("module", m.name), slog.String("version", m.version))
	}
	for {
		select {
		case inst := <-m.pool:
			inst.mod.Close(ctx)
			continue
		default:
		}
		break
	}
	m.compiled.Close(ctx)
}

// Output is a decision record a kind's export returns (abi.RetryDecision,
// abi.FallbackDecision, abi.Stub, abi.ClassifyDecision).
type Output interface{ UnmarshalABI([]byte) error }

// NewOutput is a fresh output record of kind k (nil for an unknown kind).
func NewOutput(k Kind) Output {
	switch k {
	case KindRetry:
		return &abi.RetryDecision{}
	case KindFallback:
		return &abi.FallbackDecision{}
	case KindStub:
		return &abi.Stub{}
	case KindClassify:
		return &abi.ClassifyDecision{}
	}
	return nil
}

// Call calls kind's export on in under lim (which overrides the module's
// limits where set; MemoryPages is fixed at load) and decodes its output
// into out. A failure is a *BreachError, ErrQuarantined or ErrClosed
// (wrapped); out is then undefined.
func (m *Module) Call(ctx context.Context, kind Kind, in *abi.Input, lim Limits, out Output) error {
	_, err := m.call(ctx, kind, in, lim, out.UnmarshalABI)
	return err
}

// Run is Call that also measures the call: its fuel, wall time, memory
// and what the guest logged and printed. The stats are filled as far as
// the call got, on failure too.
func (m *Module) Run(ctx context.Context, kind Kind, in *abi.Input, lim Limits, out Output) (CallStats, error) {
	return m.call(ctx, kind, in, lim, out.UnmarshalABI)
}

// Decide is Call returning the decision by value: Out is the kind's output
// record (abi.RetryDecision for KindRetry, abi.FallbackDecision for
// KindFallback, abi.Stub for KindStub, abi.ClassifyDecision for
// KindClassify). For example:
//
//	d, err := engine.Decide[abi.ClassifyDecision](ctx, m, engine.KindClassify, in, engine.Limits{})
//
// On error the decision is the zero value or partly decoded: do not use it.
func Decide[Out any, P interface {
	*Out
	Output
}](ctx context.Context, m *Module, kind Kind, in *abi.Input, lim Limits) (Out, error) {
	var out Out
	err := m.Call(ctx, kind, in, lim, P(&out))
	return out, err
}

// decode turns an output decoding error into a breach (the instance was
// healthy, so it stays; the module is counted as breaching).
func (m *Module) decode(kind Kind, err error) error {
	if err == nil {
		m.mu.Lock()
		m.consecutive = 0
		m.mu.Unlock()
		return nil
	}
	m.breached()
	return &BreachError{Kind: BreachBadOutput, Module: m.name, Version: m.version, Export: kind.Export(), Err: err}
}

// meterCall is a metered call in progress (or none, for unmetered modules).
type meterCall interface {
	End(callErr error) (used int64, err error)
}

type noMeter struct{}

func (noMeter) End(err error) (int64, error) { return 0, err }

// begin arms a call on inst: metered, and its sleeps bounded by deadline.
func (m *Module) begin(ctx context.Context, inst *instance, fuel int64, deadline time.Time) (context.Context, meterCall, error) {
	if m.unmetered {
		inst.sl.set(nil, deadline)
		return ctx, noMeter{}, nil
	}
	cctx, c, err := meter.Begin(ctx, inst.mod, fuel, deadline)
	if err != nil {
		return nil, nil, err
	}
	inst.sl.set(c, deadline)
	return cctx, c, nil
}

// beginInstantiate arms the instantiation (the start section) of an
// instance sleeping with sl.
func (m *Module) beginInstantiate(ctx context.Context, sl *sleeper, fuel int64, deadline time.Time) (context.Context, meterCall) {
	if m.unmetered {
		sl.set(nil, deadline)
		return ctx, noMeter{}
	}
	cctx, c := meter.BeginInstantiate(ctx, fuel, deadline)
	sl.set(c, deadline)
	return cctx, c
}
