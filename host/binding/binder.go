package binding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/policy"
)

// Binder implements pipeline.ModuleBinder. Safe for concurrent use.
type Binder struct {
	eng      *engine.Engine
	src      Source
	defaults engine.Limits
	log      *slog.Logger
	// OnSwap, if set, hears every version a module starts serving.
	OnSwap func(name, version string)

	mu    sync.Mutex
	bound map[string]*Bound // by module name (following) or name@version (pinned)
}

// New returns a Binder loading modules from src into eng with default
// limits (zero fields: the engine's defaults).
func New(eng *engine.Engine, src Source, defaults engine.Limits, log *slog.Logger) *Binder {
	return &Binder{eng: eng, src: src, defaults: defaults, log: log, bound: map[string]*Bound{}}
}

// Bound is a module serving one or more routes: the current version, swapped
// atomically by Reload unless pinned.
type Bound struct {
	name    string
	pinned  string
	current atomic.Pointer[engine.Module]
	mu      sync.Mutex // serialises reloads
}

// Module returns the version in use.
func (b *Bound) Module() *engine.Module { return b.current.Load() }

// Policy is a route's view of a bound module: its limits, its kind.
type Policy struct {
	b   *Bound
	lim engine.Limits
}

// DecideRetry implements policy.Retry.
func (p *Policy) DecideRetry(ctx context.Context, in *abi.Input) (abi.RetryDecision, error) {
	return retrySwap(p, func(m *engine.Module) (abi.RetryDecision, error) { return m.Retry(ctx, in, p.lim) })
}

// ChooseFallback implements policy.Fallback.
func (p *Policy) ChooseFallback(ctx context.Context, in *abi.Input) (abi.FallbackDecision, error) {
	return retrySwap(p, func(m *engine.Module) (abi.FallbackDecision, error) { return m.Fallback(ctx, in, p.lim) })
}

// GenerateStub implements policy.StubGenerator.
func (p *Policy) GenerateStub(ctx context.Context, in *abi.Input) (abi.Stub, error) {
	return retrySwap(p, func(m *engine.Module) (abi.Stub, error) { return m.Stub(ctx, in, p.lim) })
}

// retrySwap calls f on the current version; a call that raced a version
// swap (the old version closed under it) is made again on the new one, so
// a reload never fails a decision.
func retrySwap[T any](p *Policy, f func(*engine.Module) (T, error)) (T, error) {
	m := p.b.current.Load()
	v, err := f(m)
	if errors.Is(err, engine.ErrClosed) {
		if cur := p.b.current.Load(); cur != m {
			return f(cur)
		}
	}
	return v, err
}

// RetryPolicy implements pipeline.ModuleBinder.
func (bd *Binder) RetryPolicy(ctx context.Context, route string, ref *config.ModuleRef) (policy.Retry, error) {
	return bd.policy(ctx, ref, engine.KindRetry)
}

// FallbackPolicy implements pipeline.ModuleBinder.
func (bd *Binder) FallbackPolicy(ctx context.Context, route string, ref *config.ModuleRef) (policy.Fallback, error) {
	return bd.policy(ctx, ref, engine.KindFallback)
}

// StubPolicy implements pipeline.ModuleBinder.
func (bd *Binder) StubPolicy(ctx context.Context, route string, ref *config.ModuleRef) (policy.StubGenerator, error) {
	return bd.policy(ctx, ref, engine.KindStub)
}

func (bd *Binder) policy(ctx context.Context, ref *config.ModuleRef, kind engine.Kind) (*Policy, error) {
	b, err := bd.bind(ctx, ref.Name, ref.Version)
	if err != nil {
		return nil, err
	}
	m := b.current.Load()
	if !slices.Contains(m.Info().Kinds, kind) {
		return nil, fmt.Errorf("module %s@%s does not export %s (it implements %v)", m.Name(), m.Version(), kind.Export(), m.Info().Kinds)
	}
	l := ref.Limits
	return &Policy{b: b, lim: engine.Limits{Fuel: int64(l.Fuel), WallTime: l.WallTime, OutputBytes: l.OutputBytes}}, nil
}

func (bd *Binder) bind(ctx context.Context, name, version string) (*Bound, error) {
	key := name
	if version != "" {
		key = name + "@" + version
	}
	bd.mu.Lock()
	defer bd.mu.Unlock()
	if b, ok := bd.bound[key]; ok {
		return b, nil
	}
	b := &Bound{name: name, pinned: version}
	wasm, resolved, err := bd.src.Fetch(ctx, name, version)
	if err != nil {
		return nil, err
	}
	m, err := bd.load(ctx, name, resolved, wasm)
	if err != nil {
		return nil, err
	}
	b.current.Store(m)
	bd.bound[key] = b
	return b, nil
}

// load loads the resolved version of name.
func (bd *Binder) load(ctx context.Context, name, resolved string, wasm []byte) (*engine.Module, error) {
	m, err := bd.eng.Load(ctx, engine.LoadSpec{Name: name, Version: resolved, Wasm: wasm, Limits: bd.defaults})
	if err != nil {
		return nil, fmt.Errorf("module %s@%s: %w", name, resolved, err)
	}
	bd.log.Info("module loaded", slog.String("module", name), slog.String("version", resolved), slog.Any("kinds", m.Info().Kinds))
	if bd.OnSwap != nil {
		bd.OnSwap(name, resolved)
	}
	return m, nil
}

// Reload points every route following module name at its current version
// in the source (a push or a rollback). The old version drains in the
// background. Pinned bindings are left alone.
func (bd *Binder) Reload(ctx context.Context, name string) error {
	bd.mu.Lock()
	b, ok := bd.bound[name]
	bd.mu.Unlock()
	if !ok {
		return nil // no route follows it
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	wasm, resolved, err := bd.src.Fetch(ctx, name, "")
	if err != nil {
		return err
	}
	if old := b.current.Load(); old.Version() == resolved {
		return nil
	}
	m, err := bd.load(ctx, name, resolved, wasm)
	if err != nil {
		bd.log.Error("module reload failed; the previous version keeps serving", slog.String("module", name), slog.String("error", err.Error()))
		return err
	}
	old := b.current.Swap(m)
	bd.log.Info("module version swapped", slog.String("module", name), slog.String("from", old.Version()), slog.String("to", resolved))
	go old.Close(context.WithoutCancel(ctx)) // drains calls in flight
	return nil
}

// Loaded lists module name → version in use.
func (bd *Binder) Loaded() map[string]string {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	out := make(map[string]string, len(bd.bound))
	for _, b := range bd.bound {
		m := b.current.Load()
		out[m.Name()] = m.Version()
	}
	return out
}

// Close closes every loaded module.
func (bd *Binder) Close(ctx context.Context) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	for _, b := range bd.bound {
		b.current.Load().Close(ctx)
	}
}
