package binding

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/breakwater-dev/breakwater/host/modulestore"
)

// StoreSource serves modules from the module store; versions are "v<N>".
// It enforces the store's trust policy (the store's Get verifies).
type StoreSource struct{ Store *modulestore.Store }

// Fetch implements Source. A version that is stored but unusable
// (corrupt, unsigned or untrusted in secure mode) fails with a
// *VersionError naming it.
func (s StoreSource) Fetch(ctx context.Context, name, version string) ([]byte, string, error) {
	v := 0
	if version != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(version, "v"))
		if err != nil {
			return nil, "", fmt.Errorf("module %q: %w: version %q is not v<N>", name, ErrNotFound, version)
		}
		v = n
	} else {
		cur, err := s.Store.Current(ctx, name)
		if errors.Is(err, modulestore.ErrNotFound) {
			return nil, "", fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		if err != nil {
			return nil, "", err
		}
		v = cur
	}
	meta, wasm, err := s.Store.Get(ctx, name, v)
	if err != nil && version != "" && errors.Is(err, modulestore.ErrNotFound) {
		return nil, "", fmt.Errorf("%w: %w", ErrNotFound, err) // a pinned version that does not exist
	}
	if err != nil {
		// The module is stored but this version is missing, corrupt or
		// not trusted: not ErrNotFound, so other sources are not asked
		// and the binder looks for an older stored version.
		return nil, "", &VersionError{Version: "v" + strconv.Itoa(v), Err: err}
	}
	return wasm, meta.VersionString(), nil
}

// Versions implements VersionLister: the stored versions, newest first.
func (s StoreSource) Versions(ctx context.Context, name string) ([]string, error) {
	vs, err := s.Store.Versions(ctx, name)
	if errors.Is(err, modulestore.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(vs))
	for i := len(vs) - 1; i >= 0; i-- {
		out = append(out, vs[i].VersionString())
	}
	return out, nil
}

// Rollout implements RolloutSource: the module's rollout in the store.
func (s StoreSource) Rollout(ctx context.Context, name string) (modulestore.RolloutState, error) {
	return s.Store.RolloutOf(ctx, name)
}
