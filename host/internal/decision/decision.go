package decision

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
)

// Kind is one decision kind: the module export it calls and the check a
// module's output must pass before it is acted on.
type Kind[Out any] struct {
	Name engine.Kind
	// Check refuses an output the runtime cannot act on (nil: any output
	// is fine); the native policy then decides.
	Check func(*Out) error
}

// The decision kinds.
var (
	Retry    = Kind[abi.RetryDecision]{Name: engine.KindRetry}
	Fallback = Kind[abi.FallbackDecision]{Name: engine.KindFallback, Check: checkFallback}
	Stub     = Kind[abi.Stub]{Name: engine.KindStub}
	Classify = Kind[abi.ClassifyDecision]{Name: engine.KindClassify, Check: checkVerdict}
)

func checkFallback(d *abi.FallbackDecision) error {
	switch d.Action {
	case abi.FallbackCache, abi.FallbackStub, abi.FallbackDeadLetter, abi.FallbackFail:
		return nil
	}
	return fmt.Errorf("fallback module chose unknown action %q (want cache, stub, dead_letter or fail)", d.Action)
}

func checkVerdict(d *abi.ClassifyDecision) error {
	switch d.Verdict {
	case abi.VerdictSuccess, abi.VerdictRetryable, abi.VerdictPermanent:
		return nil
	}
	return fmt.Errorf("classify module gave unknown verdict %q (want success, retryable or permanent)", d.Verdict)
}

// Module is a route's bound policy module (host/binding.Policy).
type Module interface {
	// Call calls the module's export of the bound kind on in and decodes
	// its output into out.
	Call(ctx context.Context, in *abi.Input, out engine.Output) error
	// Module names the module and the version serving now: "name@vN".
	Module() string
}

// Native is a native policy: it never fails.
type Native[Out any] func(ctx context.Context, in *abi.Input) Out

// Failed hears a module call that failed (a breach, an unusable output);
// the native policy decided instead.
type Failed func(ctx context.Context, route, kind, module string, in *abi.Input, err error)

// Spec is everything a Policy is made of.
type Spec[Out any] struct {
	Kind  Kind[Out]
	Route string
	// Native decides without a module, and when the module fails; nil
	// when the kind has no native policy for the route (a stub without a
	// static stub, classify by status rules).
	Native Native[Out]
	// Module is the route's module for the kind (nil: native only), named
	// ModuleName in the route's config and given Config on every call.
	Module     Module
	ModuleName string
	Config     []byte
	// OnFailed hears module failures (nil: none).
	OnFailed Failed
	Tracer   trace.Tracer
}

// Policy decides one kind for one route. A nil *Policy decides nothing.
type Policy[Out any] struct{ s Spec[Out] }

// New returns the policy of spec.
func New[Out any](spec Spec[Out]) *Policy[Out] {
	if spec.Tracer == nil {
		spec.Tracer = tracing.Noop()
	}
	return &Policy[Out]{s: spec}
}

// HasModule reports whether a module decides (before any failure).
func (p *Policy[Out]) HasModule() bool { return p != nil && p.s.Module != nil }

// Available reports whether the policy can decide at all.
func (p *Policy[Out]) Available() bool { return p != nil && (p.s.Module != nil || p.s.Native != nil) }

// Serving names what decides now: "name@vN" of the module, or "native".
func (p *Policy[Out]) Serving() string {
	if p.HasModule() {
		return p.s.Module.Module()
	}
	return "native"
}

// Decide asks the module, else the native policy. by names what decided
// ("name@vN" or "native"); ok is false when neither could (no native
// policy, and no module or a failed one). in is not modified.
func (p *Policy[Out]) Decide(ctx context.Context, in *abi.Input) (out Out, by string, ok bool) {
	if !p.Available() {
		return out, "", false
	}
	ctx, span := p.s.Tracer.Start(ctx, "breakwater.policy."+string(p.s.Kind.Name),
		trace.WithAttributes(tracing.AttrRoute.String(p.s.Route), tracing.AttrPolicy.String(string(p.s.Kind.Name))))
	defer func() { span.SetAttributes(tracing.AttrModule.String(by)); span.End() }()
	if p.s.Module != nil {
		call := *in
		call.Config = p.s.Config
		var o Out
		err := p.s.Module.Call(ctx, &call, any(&o).(engine.Output))
		if err == nil && p.s.Kind.Check != nil {
			err = p.s.Kind.Check(&o)
		}
		if err == nil {
			return o, p.s.Module.Module(), true
		}
		if p.s.OnFailed != nil {
			p.s.OnFailed(ctx, p.s.Route, string(p.s.Kind.Name), p.s.ModuleName, in, err)
		}
	}
	if p.s.Native == nil {
		return out, "", false
	}
	return p.s.Native(ctx, in), "native", true
}
