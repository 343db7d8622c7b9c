package meter

import (
	"context"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// validators are interpreter runtimes, one per feature set, that only
// compile: decoding and validating a module as the spec defines it.
var validators struct {
	mu  sync.Mutex
	rts map[api.CoreFeatures]wazero.Runtime
}

func validator(f api.CoreFeatures) wazero.Runtime {
	validators.mu.Lock()
	defer validators.mu.Unlock()
	if rt, ok := validators.rts[f]; ok {
		return rt
	}
	if validators.rts == nil {
		validators.rts = map[api.CoreFeatures]wazero.Runtime{}
	}
	rt := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(f))
	validators.rts[f] = rt
	return rt
}

// Validate decodes and validates wasm as written, with wazero's interpreter
// and features (0: api.CoreFeaturesV2), without instantiating it. A module
// wazero refuses is an *InstrumentError with Rule RuleInvalid (wazero does
// not tell a decoding error from a validation error; the strict reader of
// Instrument, which runs first, reports the malformed ones it knows).
//
// wazero cannot be interrupted mid-compile: when ctx is done first,
// Validate returns ctx's error at once and the compile finishes in the
// background (its cost is bounded by the caller's size caps).
func Validate(ctx context.Context, wasm []byte, features api.CoreFeatures) error {
	if features == 0 {
		features = api.CoreFeaturesV2
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rt := validator(features)
	done := make(chan error, 1)
	go func() {
		cm, err := rt.CompileModule(context.Background(), wasm)
		if err == nil {
			_ = cm.Close(context.Background())
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return &InstrumentError{Rule: RuleInvalid, Reason: err.Error(), Err: err}
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
