package pipeline

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/internal/tracing"
)

// maxRetryDelay caps a retry delay a policy asks for.
const maxRetryDelay = time.Hour

// policySpan starts the span of one decision; a module's call adds its
// version and fuel to it (host/engine).
func (p *Pipeline) policySpan(ctx context.Context, r *Route, kind string) (context.Context, trace.Span) {
	return p.o.Tracer.Start(ctx, "breakwater.policy."+kind, trace.WithAttributes(tracing.AttrRoute.String(r.Name), tracing.AttrPolicy.String(kind)))
}

// moduleNamer is a policy served by a module: it names the module and the
// version in use (binding.Policy).
type moduleNamer interface{ Module() string }

// decidedBy names what made a decision: "native", or "module@version".
func decidedBy(policy any, native bool) string {
	if m, ok := policy.(moduleNamer); ok && !native {
		return m.Module()
	}
	return "native"
}

// decideRetry asks the route's retry policy, falling back to the native one
// when a module fails. The route's max attempts bound every policy. by
// names what decided.
func (p *Pipeline) decideRetry(ctx context.Context, r *Route, in *abi.Input) (d abi.RetryDecision, by string) {
	ctx, span := p.policySpan(ctx, r, "retry")
	defer func() { span.SetAttributes(tracing.AttrModule.String(by)); span.End() }()
	var err error
	if r.Retry != r.NativeRetry {
		in.Config = r.RetryConfig
		d, err = r.Retry.DecideRetry(ctx, in)
		if err != nil {
			p.policyFailed(r, "retry", r.RetryModule, in, err)
		}
	}
	native := r.Retry == r.NativeRetry || err != nil
	if native {
		in.Config = nil
		d, _ = r.NativeRetry.DecideRetry(ctx, in) // native policies do not fail
	}
	by = decidedBy(r.Retry, native)
	if d.Retry && in.Attempt >= in.MaxAttempts {
		d = abi.RetryDecision{Reason: "attempts exhausted (policy asked for more than max_attempts)"}
	}
	if d.DelayMs < 0 {
		d.DelayMs = 0
	}
	if time.Duration(d.DelayMs)*time.Millisecond > maxRetryDelay {
		d.DelayMs = maxRetryDelay.Milliseconds()
	}
	return d, by
}

// chooseFallback asks the route's fallback policy (native on module
// failure); by names what decided.
func (p *Pipeline) chooseFallback(ctx context.Context, r *Route, in *abi.Input) (_ abi.FallbackDecision, by string) {
	ctx, span := p.policySpan(ctx, r, "fallback")
	defer func() { span.SetAttributes(tracing.AttrModule.String(by)); span.End() }()
	if r.Fallback != r.NativeFallback {
		in.Config = r.FallbackConfig
		d, err := r.Fallback.ChooseFallback(ctx, in)
		if err == nil {
			switch d.Action {
			case abi.FallbackCache, abi.FallbackStub, abi.FallbackDeadLetter, abi.FallbackFail:
				return d, decidedBy(r.Fallback, false)
			}
			err = errUnknownAction(d.Action)
		}
		p.policyFailed(r, "fallback", r.FallbackModule, in, err)
	}
	in.Config = nil
	d, _ := r.NativeFallback.ChooseFallback(ctx, in)
	return d, "native"
}

// generateStub asks the route's stub generator (the static stub on module
// failure); ok is false when the route has none that works.
func (p *Pipeline) generateStub(ctx context.Context, r *Route, in *abi.Input) (abi.Stub, bool) {
	if r.Stub == nil {
		return abi.Stub{}, false
	}
	ctx, span := p.policySpan(ctx, r, "stub")
	defer span.End()
	if r.Stub != r.NativeStub {
		in.Config = r.StubConfig
		s, err := r.Stub.GenerateStub(ctx, in)
		if err == nil {
			return s, true
		}
		p.policyFailed(r, "stub", r.StubModule, in, err)
	}
	if r.NativeStub == nil {
		return abi.Stub{}, false
	}
	in.Config = nil
	s, _ := r.NativeStub.GenerateStub(ctx, in)
	return s, true
}

func (p *Pipeline) policyFailed(r *Route, kind, module string, in *abi.Input, err error) {
	p.obs.PolicyFailed(r.Name, kind, module, err)
	p.log.Warn("policy module failed; using the native policy",
		slog.String("route", r.Name), slog.String("kind", kind), slog.String("module", module),
		slog.String("message_id", in.MessageID), slog.Uint64("attempt", uint64(in.Attempt)),
		slog.String("error", err.Error()))
}

type errUnknownAction abi.FallbackAction

func (e errUnknownAction) Error() string {
	return "fallback module chose unknown action " + string(e) + " (want cache, stub, dead_letter or fail)"
}
