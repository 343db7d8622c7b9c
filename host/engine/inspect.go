package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/breakwater-dev/breakwater/host/internal/meter"
)

// Kind names a policy kind a module may export.
type Kind string

// The kinds of ABI v1 and their exports.
const (
	KindRetry    Kind = "retry"
	KindFallback Kind = "fallback"
	KindStub     Kind = "stub"
	// KindClassify judges the target's answer: success, retryable or
	// permanent failure (abi.ClassifyDecision).
	KindClassify Kind = "classify"
)

// Export is the function a kind calls.
func (k Kind) Export() string { return "bw_" + string(k) }

var kinds = []Kind{KindRetry, KindFallback, KindStub, KindClassify}

// Info is what validation learned about a module.
type Info struct {
	Kinds      []Kind
	ABIVersion int // known after instantiation (DryRun, Load); 0 from Inspect
	Imports    []string
	Size       int
	SHA256     string
	// Warnings are what a dry run found that the runtime corrects rather
	// than refuses (stub headers in its namespaces, which it drops).
	Warnings []string
}

// allowedWASI are the WASI preview 1 functions a module may import
// (docs/abi.md §3).
var allowedWASI = map[string]bool{
	"clock_time_get": true, "clock_res_get": true, "random_get": true,
	"fd_write": true, "fd_read": true, "fd_close": true, "fd_fdstat_get": true, "fd_fdstat_set_flags": true,
	"fd_filestat_get": true, "fd_seek": true, "fd_prestat_get": true, "fd_prestat_dir_name": true,
	"args_sizes_get": true, "args_get": true, "environ_sizes_get": true, "environ_get": true,
	"poll_oneoff": true, "sched_yield": true, "proc_exit": true,
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// Inspect validates a module without running it: it parses, imports only
// what the host offers, exports memory, bw_abi_version, bw_alloc and at
// least one kind with the right signatures, and can be fuel-instrumented.
func (e *Engine) Inspect(ctx context.Context, wasm []byte) (*Info, error) {
	cm, info, err := e.compile(ctx, wasm, 0, false)
	if err != nil {
		return nil, err
	}
	cm.Close(ctx)
	return info, nil
}

// compile validates wasm as written, instruments it (unless unmetered),
// compiles it once and checks the compiled module's imports and exports,
// ignoring what instrumentation added. A Go guest takes about a second to
// compile: it is done once. The caps of Options bound the work: size and
// function count are checked before anything costly, and the whole check
// runs under MaxCheckTime.
func (e *Engine) compile(ctx context.Context, wasm []byte, memoryPages uint32, unmetered bool) (wazero.CompiledModule, *Info, error) {
	if len(wasm) > e.o.MaxModuleBytes {
		return nil, nil, &ValidationError{Rule: "module_too_large", Detail: fmt.Sprintf("the module is %d bytes, over the cap of %d bytes (engine Options.MaxModuleBytes)", len(wasm), e.o.MaxModuleBytes)}
	}
	if len(wasm) < 4 || string(wasm[:4]) != "\x00asm" {
		return nil, nil, &ValidationError{Rule: "not_wasm", Detail: "the file is not a WebAssembly binary (no \\0asm header); upload the .wasm, not its source"}
	}
	cctx, cancel := context.WithTimeout(ctx, e.o.MaxCheckTime)
	defer cancel()
	type result struct {
		cm   wazero.CompiledModule
		info *Info
		err  error
	}
	done := make(chan result, 1)
	go func() {
		cm, info, err := e.compileChecked(cctx, wasm, memoryPages, unmetered)
		done <- result{cm, info, err}
	}()
	select {
	case r := <-done:
		if r.err != nil && cctx.Err() != nil && ctx.Err() == nil {
			return nil, nil, e.checkTimeout(r.err)
		}
		return r.cm, r.info, r.err
	case <-cctx.Done():
		go func() { // wazero's compiler cannot be interrupted: free its result
			if r := <-done; r.cm != nil {
				r.cm.Close(context.Background())
			}
		}()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("engine: checking the module: %w", ctx.Err())
		}
		return nil, nil, e.checkTimeout(cctx.Err())
	}
}

func (e *Engine) checkTimeout(err error) error {
	return &ValidationError{Rule: "check_timeout", Detail: fmt.Sprintf("checking the module took longer than the cap of %v (engine Options.MaxCheckTime)", e.o.MaxCheckTime), Err: err}
}

func (e *Engine) compileChecked(ctx context.Context, wasm []byte, memoryPages uint32, unmetered bool) (wazero.CompiledModule, *Info, error) {
	sum := sha256.Sum256(wasm)
	info := &Info{Size: len(wasm), SHA256: hex.EncodeToString(sum[:])}
	// The original is validated (and the caps checked) even when it is not
	// metered: Instrument does both before it rewrites anything.
	code, err := meter.InstrumentContext(ctx, wasm, meter.Options{MaxMemoryPages: memoryPages, MaxFunctions: e.o.MaxFunctions})
	if err != nil {
		var ie *meter.InstrumentError
		if !errors.As(err, &ie) {
			return nil, nil, err // ctx's
		}
		rule := "instrument"
		switch ie.Rule {
		case meter.RuleMalformed, meter.RuleInvalid:
			rule = ie.Rule
		case meter.RuleTooManyFunctions:
			return nil, nil, &ValidationError{Rule: ie.Rule, Detail: ie.Reason + " (engine Options.MaxFunctions)", Err: err}
		}
		return nil, nil, &ValidationError{Rule: rule, Detail: err.Error(), Err: err}
	}
	if unmetered {
		code = wasm
	}
	if other, err := meter.NonFunctionImports(wasm); err != nil {
		return nil, nil, &ValidationError{Rule: "malformed", Detail: "the binary does not parse: " + err.Error(), Err: err}
	} else if len(other) > 0 {
		return nil, nil, &ValidationError{Rule: "forbidden_import", Detail: fmt.Sprintf("the module imports %s; the host offers only the functions of docs/abi.md §3", strings.Join(other, ", "))}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	cm, err := e.rt.CompileModule(ctx, code)
	if err != nil {
		return nil, nil, &ValidationError{Rule: "invalid", Detail: "the binary does not compile: " + err.Error(), Err: err}
	}
	if err := check(cm, info, unmetered); err != nil {
		cm.Close(ctx)
		return nil, nil, err
	}
	return cm, info, nil
}

// check validates a compiled module's imports and exports.
func check(cm wazero.CompiledModule, info *Info, unmetered bool) error {
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		full := mod + "." + name
		switch {
		case mod == meter.RefillModule && name == meter.RefillName && !unmetered:
			continue // added by instrumentation
		case mod == "wasi_snapshot_preview1" && allowedWASI[name]:
		case mod == HostModule && name == "log":
			if !sameSig(f, []api.ValueType{i32, i32, i32}, nil) {
				return &ValidationError{Rule: "bad_signature", Detail: "bw_host.log must be (i32, i32, i32) -> ()"}
			}
		default:
			return &ValidationError{Rule: "forbidden_import", Detail: fmt.Sprintf("the module imports %s, which the host does not offer; allowed: WASI preview 1 clocks, random, stdio, args/env (empty), poll_oneoff, proc_exit, and bw_host.log (see docs/abi.md §3)", full)}
		}
		info.Imports = append(info.Imports, full)
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		return &ValidationError{Rule: "forbidden_import", Detail: fmt.Sprintf("the module imports memory %s.%s; it must define and export its own memory", mod, name)}
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		return &ValidationError{Rule: "missing_export", Detail: "the module does not export its memory as \"memory\""}
	}
	exports := cm.ExportedFunctions()
	if _, command := exports["_start"]; command {
		if _, reactor := exports["_initialize"]; !reactor {
			// A Go guest built without -buildmode=c-shared is a command: its
			// _start runs main and exits, after which no export can be
			// called. Say so before the missing exports confuse anyone.
			return &ValidationError{Rule: "not_reactor", Detail: "the module is a WASI command (it exports _start, not _initialize): a policy module must be a reactor. " +
				"A Go module is built with -buildmode=c-shared: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm ."}
		}
	}
	need := []struct {
		name           string
		params, result []api.ValueType
	}{
		{"bw_abi_version", nil, []api.ValueType{i32}},
		{"bw_alloc", []api.ValueType{i32}, []api.ValueType{i32}},
	}
	for _, n := range need {
		f, ok := exports[n.name]
		if !ok {
			return &ValidationError{Rule: "missing_export", Detail: fmt.Sprintf("the module does not export %s (every ABI v1 module must; the Go SDK does it for you)", n.name)}
		}
		if !sameSig(f, n.params, n.result) {
			return &ValidationError{Rule: "bad_signature", Detail: fmt.Sprintf("%s has signature %s, want %s", n.name, sig(f.ParamTypes(), f.ResultTypes()), sig(n.params, n.result))}
		}
	}
	for _, k := range kinds {
		f, ok := exports[k.Export()]
		if !ok {
			continue
		}
		if !sameSig(f, []api.ValueType{i32, i32}, []api.ValueType{i64}) {
			return &ValidationError{Rule: "bad_signature", Detail: fmt.Sprintf("%s has signature %s, want (i32, i32) -> (i64)", k.Export(), sig(f.ParamTypes(), f.ResultTypes()))}
		}
		info.Kinds = append(info.Kinds, k)
	}
	if len(info.Kinds) == 0 {
		return &ValidationError{Rule: "no_kinds", Detail: "the module exports none of bw_retry, bw_fallback, bw_stub, bw_classify: it implements no policy"}
	}
	return nil
}

func sameSig(f api.FunctionDefinition, params, results []api.ValueType) bool {
	return slices.Equal(f.ParamTypes(), params) && slices.Equal(f.ResultTypes(), results)
}

func sig(params, results []api.ValueType) string {
	name := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return name(params) + " -> " + name(results)
}
