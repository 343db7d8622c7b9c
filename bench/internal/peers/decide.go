package peers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/engine"
)

// Decider is one retry decision: the shape of policy.BackoffRetry.DecideRetry,
// shared by every contender of the decision benchmark.
type Decider func(ctx context.Context, in *abi.Input) (abi.RetryDecision, error)

// DecisionInput is the benchmark's input: a 503 at attempt 1 of 3
// (engine.SampleInput, the input of dry runs).
func DecisionInput() *abi.Input {
	in := engine.SampleInput()
	in.Attempt, in.MaxAttempts = 1, 3
	in.Error = abi.AttemptError{Attempt: 1, AtUnixMs: 1_700_000_000_000, Kind: abi.ErrorStatus, Status: 503, Message: "POST http://example/ answered 503"}
	return in
}

// RepoFile reads a file of the repository (modules/…) from the working
// directory or one of its parents, so that it works from the repository
// root (go run ./bench) and from a package directory (go test).
func RepoFile(rel string) ([]byte, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err == nil {
			return b, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, fmt.Errorf("%s not found in the working directory or its parents", rel)
		}
		dir = parent
	}
}

// WazeroFloor calls a minimal ABI module (modules/retry-constant.wasm)
// with plain wazero: one runtime, one instance, no metering, no pool, no
// limits. Per call it does what any host must: encode the input, bw_alloc,
// write it, bw_retry, read and decode the output. It is the floor under
// every wasm contender.
type WazeroFloor struct {
	rt    wazero.Runtime
	mod   api.Module
	mem   api.Memory
	alloc api.Function
	retry api.Function
	buf   []byte
}

// NewWazeroFloor compiles and instantiates wasm (an ABI v1 module that
// imports nothing).
func NewWazeroFloor(ctx context.Context, wasm []byte) (*WazeroFloor, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	mod, err := rt.Instantiate(ctx, wasm)
	if err != nil {
		rt.Close(ctx)
		return nil, err
	}
	w := &WazeroFloor{rt: rt, mod: mod, mem: mod.Memory(), alloc: mod.ExportedFunction("bw_alloc"), retry: mod.ExportedFunction("bw_retry")}
	if w.mem == nil || w.alloc == nil || w.retry == nil {
		rt.Close(ctx)
		return nil, errors.New("wazero floor: the module lacks memory, bw_alloc or bw_retry")
	}
	return w, nil
}

// DecideRetry is a Decider. Not safe for concurrent use.
func (w *WazeroFloor) DecideRetry(ctx context.Context, in *abi.Input) (abi.RetryDecision, error) {
	w.buf = in.MarshalABI(w.buf[:0])
	res, err := w.alloc.Call(ctx, uint64(len(w.buf)))
	if err != nil {
		return abi.RetryDecision{}, err
	}
	ptr := uint32(res[0])
	if !w.mem.Write(ptr, w.buf) {
		return abi.RetryDecision{}, errors.New("wazero floor: bw_alloc out of memory bounds")
	}
	if res, err = w.retry.Call(ctx, uint64(ptr), uint64(len(w.buf))); err != nil {
		return abi.RetryDecision{}, err
	}
	out, ok := w.mem.Read(uint32(res[0]>>32), uint32(res[0]))
	if !ok {
		return abi.RetryDecision{}, errors.New("wazero floor: output out of memory bounds")
	}
	var d abi.RetryDecision
	err = d.UnmarshalABI(out)
	return d, err
}

// Close frees the runtime.
func (w *WazeroFloor) Close(ctx context.Context) error { return w.rt.Close(ctx) }

// EngineCacheDir is where the benchmarks' engines keep compiled modules (a
// Go guest takes about a second to compile).
var EngineCacheDir = filepath.Join(os.TempDir(), "breakwater-bench-engine-cache")

// NewEngine starts a Breakwater engine for the benchmarks: one warm
// instance per module (decisions are made one at a time), compiled
// modules cached in EngineCacheDir, guest output discarded.
func NewEngine(ctx context.Context) (*engine.Engine, error) {
	return engine.New(ctx, engine.Options{PoolSize: 1, CacheDir: EngineCacheDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// EngineDecider loads wasm into e, metered (fuel and wall-time limits, as
// in production) or not (LoadSpec.Unmetered, only for measuring the
// metering's cost), and returns its retry decision with the module's
// default limits: the path a route's wasm retry policy takes.
func EngineDecider(ctx context.Context, e *engine.Engine, name string, wasm []byte, metered bool) (Decider, func(), error) {
	m, err := e.Load(ctx, engine.LoadSpec{Name: name, Version: "1", Wasm: wasm, Unmetered: !metered})
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, in *abi.Input) (abi.RetryDecision, error) {
		return engine.Decide[abi.RetryDecision](ctx, m, engine.KindRetry, in, engine.Limits{})
	}, func() { m.Close(context.Background()) }, nil
}
