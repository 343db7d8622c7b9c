package modulestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Keys of MetaBucket for rollouts.
const (
	rolloutPrefix   = "rollout."   // rollout.<name>: the Rollout an operator set
	withdrawnPrefix = "withdrawn." // withdrawn.<name>: the Withdrawal of its canary
)

// Rollout is how a module's versions other than the current one take part
// in its decisions. It is set by operators (Shadow, Promote) and read by
// every instance, which follows changes through Watch.
type Rollout struct {
	// Shadow is a version run beside the current one on the same inputs:
	// its decisions are recorded and compared, never acted on (0: none).
	Shadow int `json:"shadow,omitempty"`
	// Canary is a version that decides Percent% of the messages, chosen by
	// a stable hash of the message id (0: none).
	Canary  int `json:"canary,omitempty"`
	Percent int `json:"percent,omitempty"`
	// Generation grows with every change, so that a withdrawal names the
	// canary it withdrew and a later canary is not withdrawn by it.
	Generation int64     `json:"generation"`
	UpdatedAt  time.Time `json:"updated_at"`
	UpdatedBy  string    `json:"updated_by,omitempty"`
}

// Withdrawal is a canary rolled back automatically by an instance that saw
// it breach or fail more than the current version.
type Withdrawal struct {
	Canary     int       `json:"canary"`
	Generation int64     `json:"generation"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
	Instance   string    `json:"instance,omitempty"`
}

// RolloutState is a module's rollout as instances apply it.
type RolloutState struct {
	Rollout
	// Withdrawn is the withdrawal of this rollout's canary (nil: none).
	Withdrawn *Withdrawal `json:"withdrawn,omitempty"`
}

// ActiveCanary is the canary version and percent in force (0, 0 when
// there is none or it was withdrawn).
func (r RolloutState) ActiveCanary() (version, percent int) {
	if r.Canary == 0 || r.Percent == 0 || (r.Withdrawn != nil && r.Withdrawn.Generation == r.Generation) {
		return 0, 0
	}
	return r.Canary, r.Percent
}

// ErrBadRollout is returned (wrapped) for a rollout request that cannot be
// applied: a percent outside 0–100, a shadow whose kinds differ from the
// current version's, a version that is not stored.
var ErrBadRollout = errors.New("rollout refused")

// RolloutOf reads name's rollout (the zero state when none was set).
func (s *Store) RolloutOf(ctx context.Context, name string) (RolloutState, error) {
	r, _, err := s.rolloutEntry(ctx, name)
	if err != nil {
		return RolloutState{}, err
	}
	st := RolloutState{Rollout: r}
	e, err := s.kv.Get(ctx, withdrawnPrefix+name)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return st, fmt.Errorf("module %q: reading its canary withdrawal: %w", name, err)
	default:
		var w Withdrawal
		if err := json.Unmarshal(e.Value(), &w); err != nil {
			return st, fmt.Errorf("module %q: corrupt canary withdrawal in %s: %v", name, MetaBucket, err)
		}
		if w.Generation == r.Generation {
			st.Withdrawn = &w
		}
	}
	return st, nil
}

func (s *Store) rolloutEntry(ctx context.Context, name string) (Rollout, uint64, error) {
	e, err := s.kv.Get(ctx, rolloutPrefix+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Rollout{}, 0, nil
	}
	if err != nil {
		return Rollout{}, 0, fmt.Errorf("module %q: reading its rollout: %w", name, err)
	}
	var r Rollout
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Rollout{}, 0, fmt.Errorf("module %q: corrupt rollout in %s: %v (set a new one with `runtime module promote` or `shadow`)", name, MetaBucket, err)
	}
	return r, e.Revision(), nil
}

// updateRollout changes name's rollout with f, compare-and-set.
func (s *Store) updateRollout(ctx context.Context, name, op, by string, f func(cur int, r *Rollout) error) (Rollout, error) {
	var out Rollout
	err := cas(ctx, name, op, func() error {
		cur, crev, err := s.currentEntry(ctx, name)
		if err != nil {
			return err
		}
		if crev == 0 {
			return fmt.Errorf("module %q: %w (see `runtime module list`)", name, ErrNotFound)
		}
		r, rev, err := s.rolloutEntry(ctx, name)
		if err != nil {
			return err
		}
		if err := f(cur, &r); err != nil {
			return err
		}
		r.Generation++
		r.UpdatedAt, r.UpdatedBy = time.Now().UTC(), by
		b, _ := json.Marshal(r)
		if rev == 0 {
			_, err = s.kv.Create(ctx, rolloutPrefix+name, b)
		} else {
			_, err = s.kv.Update(ctx, rolloutPrefix+name, b, rev)
		}
		out = r
		return err
	})
	return out, err
}

// stored returns version v of name, verified as Get verifies it (sha256,
// and the signature in secure mode).
func (s *Store) stored(ctx context.Context, name string, v int) (*Meta, []byte, error) {
	m, wasm, err := s.Get(ctx, name, v)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, fmt.Errorf("module %q has no version v%d (see `runtime module show %s`): %w: %w", name, v, name, ErrBadRollout, err)
	}
	return m, wasm, err
}

// SetShadow runs version v of name beside the current version (v = 0
// stops the shadow). v must be stored, pass validate (the dry run), and
// export exactly the current version's kinds, since it decides the same
// calls.
func (s *Store) SetShadow(ctx context.Context, name string, v int, validate Validator, by string) (Rollout, error) {
	if v != 0 {
		meta, wasm, err := s.stored(ctx, name, v)
		if err != nil {
			return Rollout{}, err
		}
		cur, err := s.Current(ctx, name)
		if err != nil {
			return Rollout{}, err
		}
		if cur == v {
			return Rollout{}, fmt.Errorf("module %q: v%d is the current version; shadow a different one: %w", name, v, ErrBadRollout)
		}
		curMeta, _, err := s.Get(ctx, name, cur)
		if err != nil {
			return Rollout{}, err
		}
		if !slices.Equal(sortedKinds(meta.Kinds), sortedKinds(curMeta.Kinds)) {
			return Rollout{}, fmt.Errorf("module %q: v%d implements %s but the current v%d implements %s; a shadow must decide the same kinds: %w",
				name, v, strings.Join(meta.Kinds, ","), cur, strings.Join(curMeta.Kinds, ","), ErrBadRollout)
		}
		if _, err := validate(ctx, wasm); err != nil {
			return Rollout{}, &RejectedError{Name: name, Err: fmt.Errorf("v%d: %w", v, err)}
		}
	}
	return s.updateRollout(ctx, name, "setting the shadow", by, func(cur int, r *Rollout) error {
		if v != 0 && v == cur {
			return fmt.Errorf("module %q: v%d became the current version meanwhile: %w", name, v, ErrBadRollout)
		}
		r.Shadow = v
		return nil
	})
}

// Promote sends percent% of name's decisions to version v: 1–99 makes it
// the canary, 100 makes it current (and ends the canary), 0 withdraws the
// canary. v must be stored and pass validate (the dry run). Nothing is
// changed when any check fails.
func (s *Store) Promote(ctx context.Context, name string, v, percent int, validate Validator, by string) (Rollout, error) {
	if percent < 0 || percent > 100 {
		return Rollout{}, fmt.Errorf("module %q: percent %d is outside 0–100: %w", name, percent, ErrBadRollout)
	}
	if percent > 0 {
		_, wasm, err := s.stored(ctx, name, v)
		if err != nil {
			return Rollout{}, err
		}
		if _, err := validate(ctx, wasm); err != nil {
			return Rollout{}, &RejectedError{Name: name, Err: fmt.Errorf("v%d: %w", v, err)}
		}
	}
	if percent == 100 {
		// The pointer first: once it moved, v serves everything, and the
		// canary entry naming it is cleared after.
		if _, err := s.Rollback(ctx, name, v); err != nil {
			return Rollout{}, err
		}
	}
	return s.updateRollout(ctx, name, "promoting", by, func(cur int, r *Rollout) error {
		switch {
		case percent == 0:
			r.Canary, r.Percent = 0, 0
		case percent == 100:
			r.Canary, r.Percent = 0, 0
			if r.Shadow == v {
				r.Shadow = 0
			}
		case v == cur:
			return fmt.Errorf("module %q: v%d is the current version already: %w", name, v, ErrBadRollout)
		default:
			r.Canary, r.Percent = v, percent
		}
		return nil
	})
}

// Withdraw records that the canary of rollout generation gen is rolled
// back, for reason; every instance stops sending it decisions. It is what
// an instance writes when the canary breaches: the one rollout key a
// worker may write, and it can only take a canary out of service. A
// withdrawal of a generation that is no longer current changes nothing.
func (s *Store) Withdraw(ctx context.Context, name string, gen int64, canary int, reason, instance string) error {
	w := Withdrawal{Canary: canary, Generation: gen, Reason: reason, At: time.Now().UTC(), Instance: instance}
	b, _ := json.Marshal(w)
	if _, err := s.kv.Put(ctx, withdrawnPrefix+name, b); err != nil {
		return fmt.Errorf("module %q: withdrawing canary v%d: %w", name, canary, err)
	}
	return nil
}

func sortedKinds(k []string) []string {
	out := slices.Clone(k)
	slices.Sort(out)
	return out
}
