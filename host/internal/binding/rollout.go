package binding

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/internal/decision"
	"github.com/breakwater-dev/breakwater/host/modulestore"
)

// RolloutSource is implemented by sources that keep rollouts (StoreSource):
// a shadow version and a canary beside the current one.
type RolloutSource interface {
	Rollout(ctx context.Context, name string) (modulestore.RolloutState, error)
}

// CanaryOptions say when a canary is rolled back automatically: when,
// over Window, its breach rate or its error rate exceeds the current
// version's by more than Margin, once it has made MinCalls calls.
type CanaryOptions struct {
	Window   time.Duration
	Margin   float64
	MinCalls int
}

func (o CanaryOptions) withDefaults() CanaryOptions {
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.Margin <= 0 {
		o.Margin = 0.05
	}
	if o.MinCalls <= 0 {
		o.MinCalls = 20
	}
	return o
}

// Withdraw hears a canary rolled back by this instance: it must make every
// instance stop using it (modulestore.Store.Withdraw).
type Withdraw func(ctx context.Context, name string, generation int64, canary int, reason string) error

// rollout is what a module's bound versions beside the current one do now.
type rollout struct {
	state      modulestore.RolloutState
	shadow     *engine.Module // nil: none
	canary     *engine.Module // nil: none (or withdrawn)
	percent    int
	health     *health // the canary's and the current version's calls
	withdrawn  atomic.Bool
	generation int64
}

// CanaryShare is the stable share, in 0..99, of message id: a message and
// all its retries fall on the same side of a canary's percent.
func CanaryShare(messageID string) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(messageID))
	return int(h.Sum64() % 100)
}

// pick returns the version deciding messageID and its role.
func (r *rollout) pick(current *engine.Module, messageID string) (*engine.Module, string) {
	if r == nil || r.canary == nil || r.withdrawn.Load() || CanaryShare(messageID) >= r.percent {
		return current, decisionlog.RoleCurrent
	}
	return r.canary, decisionlog.RoleCanary
}

// applyRollout loads what b's rollout names, and swaps it in. Versions it
// no longer names are closed once no role uses them. A pinned binding has
// no rollout. Errors are logged: the current version keeps serving alone.
func (bd *Binder) applyRollout(ctx context.Context, b *Bound) {
	rs, ok := bd.src.(RolloutSource)
	if !ok || b.pinned != "" {
		return
	}
	st, err := rs.Rollout(ctx, b.name)
	if err != nil {
		bd.log.Error("reading the module's rollout failed; the current version decides alone", slog.String("module", b.name), slog.String("error", err.Error()))
		st = modulestore.RolloutState{}
	}
	old := b.rollout.Load()
	if old != nil && old.state.Generation == st.Generation && (old.state.Withdrawn == nil) == (st.Withdrawn == nil) {
		return
	}
	cur := b.current.Load()
	next := &rollout{state: st, generation: st.Generation}
	load := func(v int, role string) *engine.Module {
		if v == 0 {
			return nil
		}
		version := "v" + strconv.Itoa(v)
		switch {
		case cur != nil && cur.Version() == version:
			return nil // it is the current version: nothing beside it
		case old != nil && old.shadow != nil && old.shadow.Version() == version:
			return old.shadow
		case old != nil && old.canary != nil && old.canary.Version() == version:
			return old.canary
		}
		wasm, resolved, err := bd.src.Fetch(ctx, b.name, version)
		var m *engine.Module
		if err == nil {
			m, err = bd.loadVersion(ctx, b.name, resolved, wasm, role)
		}
		if err != nil {
			bd.log.Error("module version of the rollout unusable; the current version decides without it",
				slog.String("module", b.name), slog.String("version", version), slog.String("role", role), slog.String("error", err.Error()))
			return nil
		}
		return m
	}
	next.shadow = load(st.Shadow, decisionlog.RoleShadow)
	if v, pct := st.ActiveCanary(); v != 0 {
		next.canary, next.percent = load(v, decisionlog.RoleCanary), pct
		if next.canary != nil {
			next.health = newHealth(bd.canary.Window)
		}
	}
	b.rollout.Store(next)
	if old != nil {
		for _, m := range []*engine.Module{old.shadow, old.canary} {
			if m != nil && m != next.shadow && m != next.canary && m != b.current.Load() {
				go m.Close(context.WithoutCancel(ctx))
			}
		}
	}
	attrs := []any{slog.String("module", b.name), slog.Int64("generation", st.Generation)}
	if next.shadow != nil {
		attrs = append(attrs, slog.String("shadow", next.shadow.Version()))
	}
	if next.canary != nil {
		attrs = append(attrs, slog.String("canary", next.canary.Version()), slog.Int("percent", next.percent))
	}
	if st.Withdrawn != nil {
		attrs = append(attrs, slog.String("withdrawn", "v"+strconv.Itoa(st.Withdrawn.Canary)), slog.String("reason", st.Withdrawn.Reason))
	}
	bd.log.Info("module rollout applied", attrs...)
}

// observe counts a call of role for the canary check, and withdraws the
// canary when it does worse than the current version by the margin.
func (bd *Binder) observe(b *Bound, r *rollout, role string, err error) {
	if r == nil || r.health == nil || r.withdrawn.Load() {
		return
	}
	var be *engine.BreachError
	breach := errors.As(err, &be)
	canary := role == decisionlog.RoleCanary
	r.health.add(canary, err != nil, breach)
	if !canary {
		return
	}
	reason, bad := r.health.worse(bd.canary)
	if !bad || !r.withdrawn.CompareAndSwap(false, true) {
		return
	}
	version := r.canary.Version()
	bd.log.Error("canary rolled back automatically", slog.String("module", b.name), slog.String("canary", version), slog.String("reason", reason))
	if bd.onRollback != nil {
		bd.onRollback(b.name, version, reason)
	}
	if bd.withdraw != nil {
		n, _ := versionNumber(version)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := bd.withdraw(ctx, b.name, r.generation, n, reason); err != nil {
				bd.log.Error("withdrawing the canary on every instance failed; this instance stopped using it", slog.String("module", b.name),
					slog.String("canary", version), slog.String("error", err.Error()))
			}
		}()
	}
}

// HasShadow reports whether a shadow version runs beside the current one
// (decision.Module).
func (p *Policy) HasShadow() bool {
	r := p.b.rollout.Load()
	return r != nil && r.shadow != nil
}

// Shadow calls the shadow version, if any, on in (decision.Module). ok is
// false when there is none or it does not export the kind.
func (p *Policy) Shadow(ctx context.Context, in *abi.Input, out engine.Output) (decision.Served, bool, error) {
	r := p.b.rollout.Load()
	if r == nil || r.shadow == nil || !slices.Contains(r.shadow.Info().Kinds, p.kind) {
		return decision.Served{}, false, nil
	}
	st, err := r.shadow.Run(ctx, p.kind, in, p.lim, out)
	return served(r.shadow, decisionlog.RoleShadow, st, nil), true, err
}

func served(m *engine.Module, role string, st engine.CallStats, reject func()) decision.Served {
	return decision.Served{Module: m.Name(), Version: m.Version(), SHA256: m.SHA256(), Role: role, Stats: st, Reject: reject}
}

// health counts a canary's and the current version's calls over a
// sliding window of ten buckets.
type health struct {
	mu      sync.Mutex
	width   time.Duration
	now     func() time.Time
	buckets [10]struct {
		start                time.Time
		calls, errs, breachs [2]int // [0] current, [1] canary
	}
}

func newHealth(window time.Duration) *health {
	return &health{width: window / 10, now: time.Now}
}

func (h *health) add(canary, failed, breach bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	start := now.Truncate(h.width)
	b := &h.buckets[(start.UnixNano()/int64(h.width))%10]
	if !b.start.Equal(start) {
		b.start = start
		b.calls, b.errs, b.breachs = [2]int{}, [2]int{}, [2]int{}
	}
	i := 0
	if canary {
		i = 1
	}
	b.calls[i]++
	if failed {
		b.errs[i]++
	}
	if breach {
		b.breachs[i]++
	}
}

// worse reports whether the canary breaches or fails more than the
// current version by more than o.Margin, over the window.
func (h *health) worse(o CanaryOptions) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var calls, errs, breachs [2]int
	oldest := h.now().Add(-10 * h.width)
	for _, b := range h.buckets {
		if b.start.Before(oldest) {
			continue
		}
		for i := range 2 {
			calls[i] += b.calls[i]
			errs[i] += b.errs[i]
			breachs[i] += b.breachs[i]
		}
	}
	if calls[1] < o.MinCalls {
		return "", false
	}
	rate := func(n, d int) float64 {
		if d == 0 {
			return 0
		}
		return float64(n) / float64(d)
	}
	cb, ub := rate(breachs[1], calls[1]), rate(breachs[0], calls[0])
	if cb-ub > o.Margin {
		return fmt.Sprintf("breach rate %.1f%% over %d calls, current version %.1f%% over %d (margin %.1f points, window %v)",
			cb*100, calls[1], ub*100, calls[0], o.Margin*100, 10*h.width), true
	}
	ce, ue := rate(errs[1], calls[1]), rate(errs[0], calls[0])
	if ce-ue > o.Margin {
		return fmt.Sprintf("error rate %.1f%% over %d calls, current version %.1f%% over %d (margin %.1f points, window %v)",
			ce*100, calls[1], ue*100, calls[0], o.Margin*100, 10*h.width), true
	}
	return "", false
}
