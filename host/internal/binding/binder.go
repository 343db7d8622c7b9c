package binding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/internal/decision"
)

// ErrNoUsableVersion is returned (wrapped, with the reason) by the calls
// of a policy whose module has no version that verifies and loads, or
// whose version in use does not export the kind the route needs. The
// pipeline then decides with the route's native policy.
var ErrNoUsableVersion = errors.New("no usable version of the policy module")

// Binder binds routes to policy modules. Safe for concurrent use.
type Binder struct {
	eng        *engine.Engine
	src        Source
	defaults   engine.Limits
	log        *slog.Logger
	onSwap     func(name, version string)
	canary     CanaryOptions
	withdraw   Withdraw
	onRollback func(name, version, reason string)

	mu    sync.Mutex
	bound map[string]*Bound // by module name (following) or name@version (pinned)
}

// Options configure a Binder. The zero value works: engine default
// limits, slog.Default, no hooks.
type Options struct {
	// Defaults are the modules' default call limits (zero fields: the
	// engine's defaults).
	Defaults engine.Limits
	Log      *slog.Logger
	// OnSwap, if set, hears every version a module starts serving (as
	// current, shadow or canary).
	OnSwap func(name, version string)
	// Canary says when a canary is rolled back automatically.
	Canary CanaryOptions
	// Withdraw, if set, makes an automatic rollback reach every instance;
	// without it only this instance stops using the canary.
	Withdraw Withdraw
	// OnRollback, if set, hears each automatic rollback, for metrics.
	OnRollback func(name, version, reason string)
}

// New returns a Binder loading modules from src into eng.
func New(eng *engine.Engine, src Source, o Options) *Binder {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Binder{eng: eng, src: src, defaults: o.Defaults, log: o.Log, onSwap: o.OnSwap, canary: o.Canary.withDefaults(),
		withdraw: o.Withdraw, onRollback: o.OnRollback, bound: map[string]*Bound{}}
}

// Bound is a module serving one or more routes: the version in use,
// swapped atomically by Reload unless pinned. It may serve no version
// (none verifies and loads); its policies' calls then fail with
// ErrNoUsableVersion.
type Bound struct {
	bd       *Binder
	name     string
	pinned   string
	current  atomic.Pointer[engine.Module]
	unusable atomic.Pointer[error] // why nothing is served (current nil)
	rollout  atomic.Pointer[rollout]
	mu       sync.Mutex // serialises reloads
}

// Module returns the version in use (nil: none is usable).
func (b *Bound) Module() *engine.Module { return b.current.Load() }

func (b *Bound) noVersion() error {
	if r := b.unusable.Load(); r != nil {
		return fmt.Errorf("module %q: %w: %w", b.name, ErrNoUsableVersion, *r)
	}
	return fmt.Errorf("module %q: %w", b.name, ErrNoUsableVersion)
}

// Policy is a route's view of a bound module: its kind, its limits.
type Policy struct {
	b    *Bound
	kind engine.Kind
	lim  engine.Limits
}

// module is the version to call, or why there is none.
func (p *Policy) module() (*engine.Module, error) {
	m := p.b.current.Load()
	if m == nil {
		return nil, p.b.noVersion()
	}
	if !slices.Contains(m.Info().Kinds, p.kind) {
		return nil, fmt.Errorf("module %s@%s: %w: it does not export %s (it implements %v)", m.Name(), m.Version(), ErrNoUsableVersion, p.kind.Export(), m.Info().Kinds)
	}
	return m, nil
}

// Module names the module and version that serves this policy now
// ("name@vN"; "name@none" while no version is usable), for logs and
// readiness. A decision made during a version swap may have come from the
// version before.
func (p *Policy) Module() string {
	if m := p.b.current.Load(); m != nil {
		return m.Name() + "@" + m.Version()
	}
	return p.b.name + "@none"
}

// Call calls the policy's kind on in, under the route's limits, and
// decodes the output into out (decision.Module). The version called is the
// current one, or the canary for the canary's share of message ids (the
// same for every retry of a message). A call that raced a version swap
// (the old version closed under it) is made again on the new one, so a
// reload never fails a decision.
func (p *Policy) Call(ctx context.Context, in *abi.Input, out engine.Output) (decision.Served, error) {
	m, err := p.module()
	if err != nil {
		return decision.Served{}, err
	}
	r := p.b.rollout.Load()
	called, role := r.pick(m, in.MessageID)
	if role == decisionlog.RoleCanary && !slices.Contains(called.Info().Kinds, p.kind) {
		called, role = m, decisionlog.RoleCurrent
	}
	st, err := called.Run(ctx, p.kind, in, p.lim, out)
	if errors.Is(err, engine.ErrClosed) {
		if cur, cerr := p.module(); cerr == nil && cur != m {
			called, role = cur, decisionlog.RoleCurrent
			st, err = cur.Run(ctx, p.kind, in, p.lim, out)
		}
	}
	p.b.bd.observe(p.b, r, role, err)
	reject := func() { p.b.bd.observe(p.b, r, role, errRejected) }
	return served(called, role, st, reject), err
}

// errRejected counts an output the runtime refused as a failed call.
var errRejected = errors.New("output refused")

// Ref names a module (and optionally pins a version) for one kind of a
// route, with the route's limits for its calls (zero fields: the
// module's).
type Ref struct {
	Name    string
	Version string // "": follow the current version
	Kind    engine.Kind
	Limits  engine.Limits
}

// Policy binds ref for route. It fails only when no source knows the
// module (or the pinned version) at all: a configuration mistake. A module
// whose versions are all unusable, or whose version in use lacks kind,
// still gives a policy: its calls return ErrNoUsableVersion and the route
// decides natively, loudly logged.
func (bd *Binder) Policy(ctx context.Context, route string, ref Ref) (*Policy, error) {
	kind := ref.Kind
	b, err := bd.bind(ctx, ref.Name, ref.Version)
	if err != nil {
		return nil, err
	}
	m := b.current.Load()
	switch {
	case m == nil:
		bd.log.Error("route has no usable version of its policy module; it uses its native policy until one is pushed",
			slog.String("route", route), slog.String("module", ref.Name), slog.String("kind", string(kind)), slog.String("error", b.noVersion().Error()))
	case !slices.Contains(m.Info().Kinds, kind):
		bd.log.Error("policy module does not export the kind the route uses; the route uses its native policy",
			slog.String("route", route), slog.String("module", m.Name()), slog.String("version", m.Version()),
			slog.String("kind", string(kind)), slog.Any("kinds", m.Info().Kinds))
	}
	return &Policy{b: b, kind: kind, lim: ref.Limits}, nil
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
	b := &Bound{bd: bd, name: name, pinned: version}
	m, reason, err := bd.resolve(ctx, b)
	if err != nil {
		return nil, err
	}
	if m != nil {
		b.current.Store(m)
	} else {
		b.unusable.Store(&reason)
	}
	bd.applyRollout(ctx, b)
	bd.bound[key] = b
	return b, nil
}

// resolve finds the version b should serve: the one the source resolves
// to (the current one, or the pinned one) if it verifies and loads;
// otherwise, when following, the newest version older than it that does
// (versions newer than the current pointer were rolled back from on
// purpose and are not served). The version in use is returned as is,
// not loaded again. m == nil: no version is usable, for reason. err: the
// module (or pinned version) is unknown to every source.
func (bd *Binder) resolve(ctx context.Context, b *Bound) (m *engine.Module, reason, err error) {
	inUse := b.current.Load()
	wasm, resolved, ferr := bd.src.Fetch(ctx, b.name, b.pinned)
	if ferr == nil {
		if inUse != nil && inUse.Version() == resolved {
			return inUse, nil, nil
		}
		m, lerr := bd.load(ctx, b.name, resolved, wasm)
		if lerr == nil {
			return m, nil, nil
		}
		ferr = &VersionError{Version: resolved, Err: lerr}
	}
	var ve *VersionError
	known := errors.As(ferr, &ve)
	if !known && errors.Is(ferr, ErrNotFound) {
		return nil, nil, ferr
	}
	bad := "?"
	if known {
		bad = ve.Version
	}
	fail := func(reason error) (*engine.Module, error, error) {
		bd.log.Error("policy module has no usable version; routes using it fall back to their native policy",
			slog.String("module", b.name), slog.String("bad_version", bad), slog.String("reason", reason.Error()),
			slog.String("serving", "native policy"))
		return nil, reason, nil
	}
	if b.pinned != "" {
		return fail(ferr)
	}
	lister, ok := bd.src.(VersionLister)
	if !ok {
		return fail(ferr)
	}
	versions, lerr := lister.Versions(ctx, b.name)
	if lerr != nil {
		return fail(fmt.Errorf("%w; listing older versions: %v", ferr, lerr))
	}
	badN, badNumbered := versionNumber(bad)
	for _, cand := range versions {
		if cand == bad {
			continue
		}
		if n, ok := versionNumber(cand); badNumbered && (!ok || n > badN) {
			continue
		}
		if inUse != nil && inUse.Version() == cand {
			m = inUse
		} else {
			w, v, err := bd.src.Fetch(ctx, b.name, cand)
			if err == nil {
				m, err = bd.load(ctx, b.name, v, w)
			}
			if err != nil {
				bd.log.Warn("older policy module version unusable too", slog.String("module", b.name), slog.String("version", cand), slog.String("reason", err.Error()))
				continue
			}
		}
		bd.log.Error("policy module's current version is unusable; serving the newest usable older version",
			slog.String("module", b.name), slog.String("bad_version", bad), slog.String("reason", ferr.Error()),
			slog.String("serving", m.Version()))
		return m, nil, nil
	}
	return fail(ferr)
}

// versionNumber parses "v<N>".
func versionNumber(v string) (int, bool) {
	s, ok := strings.CutPrefix(v, "v")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// load loads the resolved version of name to serve as its current one.
func (bd *Binder) load(ctx context.Context, name, resolved string, wasm []byte) (*engine.Module, error) {
	m, err := bd.loadVersion(ctx, name, resolved, wasm, "current")
	if err == nil && bd.onSwap != nil {
		bd.onSwap(name, resolved)
	}
	return m, err
}

// loadVersion loads the resolved version of name for role.
func (bd *Binder) loadVersion(ctx context.Context, name, resolved string, wasm []byte, role string) (*engine.Module, error) {
	m, err := bd.eng.Load(ctx, engine.LoadSpec{Name: name, Version: resolved, Wasm: wasm, Limits: bd.defaults})
	if err != nil {
		return nil, fmt.Errorf("module %s@%s: %w", name, resolved, err)
	}
	bd.log.Info("module loaded", slog.String("module", name), slog.String("version", resolved), slog.String("role", role), slog.Any("kinds", m.Info().Kinds))
	return m, nil
}

// Reload points every route following module name at the version resolve
// picks now (after a push or a rollback): the current one, or the newest
// usable older one. A module that had no usable version starts serving
// one as soon as one is found. The old version drains in the background.
// When nothing is usable (or the module is gone) the version in use keeps
// serving and the error is returned. Pinned bindings are left alone.
func (bd *Binder) Reload(ctx context.Context, name string) error {
	bd.mu.Lock()
	b, ok := bd.bound[name]
	bd.mu.Unlock()
	if !ok {
		return nil // no route follows it
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	m, reason, err := bd.resolve(ctx, b)
	old := b.current.Load()
	if err != nil || m == nil {
		if err == nil {
			err = fmt.Errorf("module %q: %w: %w", name, ErrNoUsableVersion, reason)
		}
		if old != nil {
			bd.log.Error("module reload failed; the version in use keeps serving", slog.String("module", name),
				slog.String("serving", old.Version()), slog.String("error", err.Error()))
		} else if reason != nil {
			b.unusable.Store(&reason)
		}
		return err
	}
	defer bd.applyRollout(ctx, b) // a rollout change comes here too
	if m == old {
		return nil
	}
	b.current.Store(m)
	b.unusable.Store(nil)
	if old == nil {
		bd.log.Warn("module has a usable version again", slog.String("module", name), slog.String("serving", m.Version()))
		return nil
	}
	bd.log.Info("module version swapped", slog.String("module", name), slog.String("from", old.Version()), slog.String("to", m.Version()))
	if r := b.rollout.Load(); r == nil || (old != r.shadow && old != r.canary) {
		go old.Close(context.WithoutCancel(ctx)) // drains calls in flight
	}
	return nil
}

// Loaded lists module name → version in use (modules with no usable
// version are left out).
func (bd *Binder) Loaded() map[string]string {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	out := make(map[string]string, len(bd.bound))
	for _, b := range bd.bound {
		if m := b.current.Load(); m != nil {
			out[m.Name()] = m.Version()
		}
	}
	return out
}

// Close closes every loaded module.
func (bd *Binder) Close(ctx context.Context) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	for _, b := range bd.bound {
		if m := b.current.Load(); m != nil {
			m.Close(ctx)
		}
		if r := b.rollout.Load(); r != nil {
			for _, m := range []*engine.Module{r.shadow, r.canary} {
				if m != nil {
					m.Close(ctx)
				}
			}
		}
	}
}
