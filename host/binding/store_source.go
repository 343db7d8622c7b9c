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
type StoreSource struct{ Store *modulestore.Store }

// Fetch implements Source.
func (s StoreSource) Fetch(ctx context.Context, name, version string) ([]byte, string, error) {
	v := 0
	if version != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(version, "v"))
		if err != nil {
			return nil, "", fmt.Errorf("module %q: %w: version %q is not v<N>", name, ErrNotFound, version)
		}
		v = n
	}
	meta, wasm, err := s.Store.Get(ctx, name, v)
	if errors.Is(err, modulestore.ErrNotFound) {
		return nil, "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err != nil {
		return nil, "", err
	}
	return wasm, meta.VersionString(), nil
}
