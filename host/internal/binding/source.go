package binding

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/breakwater-dev/breakwater/host/modulestore"
)

// Source finds module binaries.
type Source interface {
	// Fetch returns module name's binary at version ("" = the current one)
	// and the version it resolved to.
	Fetch(ctx context.Context, name, version string) (wasm []byte, resolved string, err error)
}

// VersionLister is implemented by sources that keep several versions of a
// module (StoreSource, Sources). The binder uses it to find an older
// version when the current one cannot be used.
type VersionLister interface {
	// Versions lists name's versions, newest first; ErrNotFound (wrapped)
	// when the source does not know name.
	Versions(ctx context.Context, name string) ([]string, error)
}

// ErrNotFound is returned (wrapped) for unknown modules or versions.
var ErrNotFound = errors.New("module not found")

// VersionError is a Fetch that found the module but could not use the
// version it resolved to (missing, corrupt, unsigned, untrusted).
type VersionError struct {
	Version string
	Err     error
}

func (e *VersionError) Error() string { return e.Err.Error() }
func (e *VersionError) Unwrap() error { return e.Err }

// DirSource serves <Dir>/<name>.wasm; a module's version is the first 12
// hex digits of its sha256.
type DirSource struct {
	Dir string
	// Secure, if set, is asked on every Fetch; while it reports true
	// (secure mode: modules must be signed) the directory is not used,
	// since its files carry no signature.
	Secure func() bool
}

// Fetch implements Source.
func (d DirSource) Fetch(_ context.Context, name, version string) ([]byte, string, error) {
	if d.Secure != nil && d.Secure() {
		return nil, "", fmt.Errorf("module %q: %w: modules.dir %s is not used in secure mode (push the module signed)", name, ErrNotFound, d.Dir)
	}
	path := filepath.Join(d.Dir, name+".wasm")
	wasm, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("module %q: %w: no %s (put the .wasm there, or upload it with `runtime module push`)", name, ErrNotFound, path)
	}
	if err != nil {
		return nil, "", fmt.Errorf("module %q: %w", name, err)
	}
	sum := sha256.Sum256(wasm)
	v := hex.EncodeToString(sum[:])[:12]
	if version != "" && version != v {
		return nil, "", fmt.Errorf("module %q: %w: version %s pinned, but %s holds version %s", name, ErrNotFound, version, path, v)
	}
	return wasm, v, nil
}

// Sources tries each source in order; the first that knows the module wins.
type Sources []Source

// Fetch implements Source.
func (s Sources) Fetch(ctx context.Context, name, version string) ([]byte, string, error) {
	var last error = fmt.Errorf("module %q: %w: no module sources configured", name, ErrNotFound)
	for _, src := range s {
		wasm, v, err := src.Fetch(ctx, name, version)
		if err == nil {
			return wasm, v, nil
		}
		last = err
		if !errors.Is(err, ErrNotFound) {
			return nil, "", err
		}
	}
	return nil, "", last
}

// Versions implements VersionLister: the versions of the first source
// that lists name.
func (s Sources) Versions(ctx context.Context, name string) ([]string, error) {
	for _, src := range s {
		l, ok := src.(VersionLister)
		if !ok {
			continue
		}
		vs, err := l.Versions(ctx, name)
		if err == nil && len(vs) > 0 {
			return vs, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("module %q: %w", name, ErrNotFound)
}

// Rollout implements RolloutSource: the rollout of the first source that
// keeps rollouts (none: no rollout).
func (s Sources) Rollout(ctx context.Context, name string) (modulestore.RolloutState, error) {
	for _, src := range s {
		if r, ok := src.(RolloutSource); ok {
			return r.Rollout(ctx, name)
		}
	}
	return modulestore.RolloutState{}, nil
}
