package engine

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/breakwater-dev/breakwater/host/internal/meter"
)

// Options configure an Engine. Zero values take the defaults.
type Options struct {
	// CacheDir keeps compiled modules across restarts ("" = in memory).
	CacheDir string
	Logger   *slog.Logger
	// PoolSize bounds warm instances per module version (default 4).
	PoolSize int
	// StdioCapBytes bounds guest stdout+stderr logged per call (default 4 KiB).
	StdioCapBytes int
	// QuarantineAfter consecutive breaches quarantine a module (default 5)
	// for QuarantineFor (default 30s).
	QuarantineAfter int
	QuarantineFor   time.Duration
	// OnCall, if set, hears about every call (metrics).
	OnCall func(CallReport)

	// Caps on what a module may cost to check (Inspect, Load, DryRun); a
	// module over one is refused with a *ValidationError naming the cap.
	// MaxModuleBytes bounds the binary's size (default 16 MiB; the Go
	// guests of modules/ are about 3.3 MB). MaxFunctions bounds imported
	// plus defined functions (default 50,000; the Go guests have about
	// 2,200). MaxCheckTime bounds validating, instrumenting and compiling
	// one module (default 30s; a Go guest takes about a second).
	MaxModuleBytes int
	MaxFunctions   int
	MaxCheckTime   time.Duration
}

// Default caps of Options.
const (
	DefaultMaxModuleBytes = 16 << 20
	DefaultMaxFunctions   = 50_000
	DefaultMaxCheckTime   = 30 * time.Second
)

// CallReport describes one call, for metrics.
type CallReport struct {
	Module, Version, Kind string
	Duration              time.Duration
	Fuel                  int64
	Breach                BreachKind // "" when none
	Err                   error
}

// Engine compiles and runs policy modules. Safe for concurrent use.
type Engine struct {
	o     Options
	log   *slog.Logger
	rt    wazero.Runtime
	cache wazero.CompilationCache
	seq   atomic.Uint64 // instance names
}

// HostModule is the module name of the host's own imports.
const HostModule = "bw_host"

// New starts an engine.
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 4
	}
	if o.StdioCapBytes <= 0 {
		o.StdioCapBytes = 4 << 10
	}
	if o.QuarantineAfter <= 0 {
		o.QuarantineAfter = 5
	}
	if o.QuarantineFor <= 0 {
		o.QuarantineFor = 30 * time.Second
	}
	if o.MaxModuleBytes <= 0 {
		o.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if o.MaxFunctions <= 0 {
		o.MaxFunctions = DefaultMaxFunctions
	}
	if o.MaxCheckTime <= 0 {
		o.MaxCheckTime = DefaultMaxCheckTime
	}
	e := &Engine{o: o, log: o.Logger}
	var err error
	if o.CacheDir != "" {
		if e.cache, err = wazero.NewCompilationCacheWithDir(o.CacheDir); err != nil {
			return nil, fmt.Errorf("engine: compilation cache %s: %w", o.CacheDir, err)
		}
	} else {
		e.cache = wazero.NewCompilationCache()
	}
	e.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(e.cache))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.rt); err != nil {
		return nil, fmt.Errorf("engine: wasi: %w", err)
	}
	if err := meter.Register(ctx, e.rt); err != nil {
		return nil, err
	}
	if _, err := e.rt.NewHostModuleBuilder(HostModule).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(e.hostLog), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, nil).Export("log").
		Instantiate(ctx); err != nil {
		return nil, fmt.Errorf("engine: %s: %w", HostModule, err)
	}
	return e, nil
}

// Close closes every module and the runtime.
func (e *Engine) Close(ctx context.Context) error {
	err := e.rt.Close(ctx)
	_ = e.cache.Close(ctx)
	return err
}

// maxLogMessage caps one bw_host.log message.
const maxLogMessage = 4096

// hostLog is bw_host.log(level, ptr, len).
func (e *Engine) hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	truncated := false
	if n > maxLogMessage {
		n, truncated = maxLogMessage, true
	}
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		return
	}
	msg := strings.ToValidUTF8(string(b), string(utf8.RuneError))
	attrs := []slog.Attr{slog.String("module", moduleOf(mod.Name())), slog.String("message", msg)}
	if truncated {
		attrs = append(attrs, slog.Bool("truncated", true))
	}
	if cs, _ := ctx.Value(callStateKey{}).(*callState); cs != nil {
		attrs = append(attrs, slog.String("route", cs.route), slog.String("message_id", cs.messageID))
		cs.keepLog(slog.Level(level), msg)
	}
	lv := slog.Level(level)
	if ctx.Value(warmUpKey{}) != nil {
		lv = slog.LevelDebug
		attrs = append(attrs, slog.Bool("warm_up", true))
	}
	e.log.LogAttrs(ctx, lv, "module log", attrs...)
}

// warmUpKey marks the context of warm-up calls (see Module.warmUp).
type warmUpKey struct{}

// moduleOf strips the instance suffix of an instance name.
func moduleOf(instance string) string {
	if i := strings.LastIndexByte(instance, '#'); i >= 0 {
		return instance[:i]
	}
	return instance
}

// newModuleConfig is the sandbox of one instance: no files, env or args;
// real clocks; sleeps bounded by the call's deadline; crypto random; stdio
// to the capped writer.
func newModuleConfig(name string, stdio *stdioWriter, sl *sleeper, deterministic bool) wazero.ModuleConfig {
	c := wazero.NewModuleConfig().
		WithName(name).
		WithStartFunctions(). // _initialize is called under limits, below
		WithNanosleep(sl.nanosleep).
		WithStdout(stdio).
		WithStderr(stdio)
	if deterministic {
		// wazero's default clocks are fake and start at the same time in
		// every instance; the random numbers are seeded alike.
		return c.WithRandSource(mathrand.NewChaCha8([32]byte{'b', 'r', 'e', 'a', 'k', 'w', 'a', 't', 'e', 'r'}))
	}
	return c.WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader)
}

// sleeper is an instance's nanosleep, the clock of WASI poll_oneoff (a Go
// guest's time.Sleep): it never sleeps past the deadline of the call in
// progress, which it learns from Module.begin. wazero calls it on the
// goroutine running the guest; the atomics keep the race detector calm
// when an instance moves between goroutines through the pool.
type sleeper struct {
	call     atomic.Pointer[meter.Call]
	deadline atomic.Int64 // unix nanoseconds; 0: none
}

func (s *sleeper) set(c *meter.Call, deadline time.Time) {
	s.call.Store(c)
	if deadline.IsZero() {
		s.deadline.Store(0)
	} else {
		s.deadline.Store(deadline.UnixNano())
	}
}

func (s *sleeper) nanosleep(ns int64) {
	if c := s.call.Load(); c != nil {
		c.Sleep(ns) // cut at the deadline, which the next fuel check reports
		return
	}
	d := time.Duration(max(ns, 0))
	if dl := s.deadline.Load(); dl != 0 {
		d = min(d, time.Until(time.Unix(0, dl)))
	}
	if d > 0 {
		time.Sleep(d)
	}
}
