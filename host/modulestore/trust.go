package modulestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// TrustPolicy is the stored trust policy: the nkey public keys whose
// signatures are accepted. With at least one key the store is in secure
// mode for every client: Push, Get and Rollback refuse modules that are
// not signed by one of them, whatever the client's own configuration.
type TrustPolicy struct {
	Keys      []string  `json:"keys"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Secure reports whether the policy names any key.
func (p *TrustPolicy) Secure() bool { return p != nil && len(p.Keys) > 0 }

func (p *TrustPolicy) add(key string) bool {
	if slices.Contains(p.Keys, key) {
		return false
	}
	p.Keys = append(p.Keys, key)
	slices.Sort(p.Keys)
	return true
}

// ErrLastTrustedKey is returned by UntrustKey for the last trusted key
// without force: removing it turns secure mode off.
var ErrLastTrustedKey = errors.New("refusing to remove the last trusted key: that turns secure mode off and lets unsigned modules run")

// ErrNotTrusted is returned by UntrustKey for a key the policy does not name.
var ErrNotTrusted = errors.New("key is not trusted")

func checkKey(key string) error {
	if !nkeys.IsValidPublicUserKey(key) {
		return fmt.Errorf("trusted key %q: not an nkey user public key (U..., as printed by `runtime module keygen`)", key)
	}
	return nil
}

// Policy reads the stored trust policy (empty: not secure).
func (s *Store) Policy(ctx context.Context) (*TrustPolicy, error) {
	p, _, err := s.readPolicy(ctx)
	return p, err
}

func (s *Store) readPolicy(ctx context.Context) (*TrustPolicy, uint64, error) {
	e, err := s.kv.Get(ctx, trustKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &TrustPolicy{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading the trust policy from %s: %w", MetaBucket, err)
	}
	var p TrustPolicy
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		// Fail closed: with a policy that cannot be read, nothing is pushed
		// or loaded until an admin stores a new one (`module trust add`).
		return nil, e.Revision(), fmt.Errorf("%w: key %q of %s: %v (store a new one with `runtime module trust add`)", ErrCorruptPolicy, trustKey, MetaBucket, err)
	}
	return &p, e.Revision(), nil
}

// updatePolicy applies change to the stored policy with a compare-and-set
// and returns the policy stored.
func (s *Store) updatePolicy(ctx context.Context, op string, change func(*TrustPolicy) error) (*TrustPolicy, error) {
	var out *TrustPolicy
	err := cas(ctx, "", op, func() error {
		p, rev, err := s.readPolicy(ctx)
		if errors.Is(err, ErrCorruptPolicy) {
			p, err = &TrustPolicy{}, nil // replaced by the change
		}
		if err != nil {
			return err
		}
		before := slices.Clone(p.Keys)
		if err := change(p); err != nil {
			return err
		}
		out = p
		if slices.Equal(before, p.Keys) && rev != 0 {
			return nil
		}
		p.UpdatedAt = time.Now().UTC()
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, trustKey, b)
		} else {
			_, err = s.kv.Update(ctx, trustKey, b, rev)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ErrCorruptPolicy is returned (wrapped) when the stored trust policy
// cannot be decoded. The store then fails closed: Push, Get and Rollback
// refuse until a change (TrustKey, or Open with TrustedKeys) replaces it.
var ErrCorruptPolicy = errors.New("stored trust policy is corrupt")

// TrustKey adds an nkey public key to the stored trust policy (turning
// secure mode on if it was off) and returns the policy.
func (s *Store) TrustKey(ctx context.Context, key string) (*TrustPolicy, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return s.updatePolicy(ctx, "trusting "+key, func(p *TrustPolicy) error {
		p.add(key)
		return nil
	})
}

// UntrustKey removes a key from the stored trust policy. Modules signed
// only by it are refused from then on (instances keep the version they
// run until they load another). Removing the last key turns secure mode
// off, so it needs force; without it the error is ErrLastTrustedKey.
func (s *Store) UntrustKey(ctx context.Context, key string, force bool) (*TrustPolicy, error) {
	return s.updatePolicy(ctx, "removing trusted key "+key, func(p *TrustPolicy) error {
		i := slices.Index(p.Keys, key)
		if i < 0 {
			return fmt.Errorf("%w: %s (trusted: %v)", ErrNotTrusted, key, p.Keys)
		}
		if len(p.Keys) == 1 && !force {
			return fmt.Errorf("%w (key %s; use --force to do it anyway)", ErrLastTrustedKey, key)
		}
		p.Keys = slices.Delete(p.Keys, i, i+1)
		return nil
	})
}
