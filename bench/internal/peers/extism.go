package peers

import (
	"context"
	_ "embed"
	"fmt"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// ExtismPluginWasm is extism-plugin/retry.wasm (rebuild with
// extism-plugin/build.sh): the retry logic of retry-status-aware behind
// the Extism Go PDK, export "decide", ABI v1 bytes in and out.
//
//go:embed extism-plugin/retry.wasm
var ExtismPluginWasm []byte

// Extism calls the plugin through the Extism Go SDK: one plugin instance,
// WASI enabled (a Go guest needs it), the SDK's default wazero compiler
// runtime, no per-call timeout or memory limit set (Extism's defaults).
// Per call: encode the abi.Input (the same encoding Breakwater's engine
// does), Plugin.Call("decide"), decode the abi.RetryDecision.
type Extism struct {
	p   *extism.Plugin
	buf []byte
}

// NewExtism instantiates wasm (ExtismPluginWasm when nil).
func NewExtism(ctx context.Context, wasm []byte) (*Extism, error) {
	if wasm == nil {
		wasm = ExtismPluginWasm
	}
	cache := wazero.NewCompilationCache()
	p, err := extism.NewPlugin(ctx, extism.Manifest{Wasm: []extism.Wasm{extism.WasmData{Data: wasm, Name: "retry"}}},
		extism.PluginConfig{EnableWasi: true, RuntimeConfig: wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache)}, nil)
	if err != nil {
		return nil, fmt.Errorf("extism: %w", err)
	}
	return &Extism{p: p}, nil
}

// DecideRetry is a Decider. Not safe for concurrent use.
func (x *Extism) DecideRetry(ctx context.Context, in *abi.Input) (abi.RetryDecision, error) {
	x.buf = in.MarshalABI(x.buf[:0])
	rc, out, err := x.p.CallWithContext(ctx, "decide", x.buf)
	if err != nil {
		return abi.RetryDecision{}, fmt.Errorf("extism: decide: %w (rc %d)", err, rc)
	}
	var d abi.RetryDecision
	err = d.UnmarshalABI(out)
	return d, err
}

// Close frees the plugin.
func (x *Extism) Close(ctx context.Context) error { return x.p.Close(ctx) }
