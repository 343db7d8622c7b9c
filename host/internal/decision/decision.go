package decision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
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

// Served says which module version made a call and what it cost.
type Served struct {
	Module, Version, SHA256 string
	// Role is decisionlog.RoleCurrent, RoleCanary or RoleShadow.
	Role  string
	Stats engine.CallStats
	// Reject, if set, reports an output the runtime refused (it counts as
	// a failed call of that version, for the canary's rollback).
	Reject func()
}

// Module is a route's bound policy module (host/binding.Policy).
type Module interface {
	// Call calls the module's export of the bound kind on in and decodes
	// its output into out: the current version, or the canary for its
	// share of messages.
	Call(ctx context.Context, in *abi.Input, out engine.Output) (Served, error)
	// HasShadow reports whether a shadow version runs beside the current
	// one now; Shadow calls it the same way as Call (ok is false when
	// there is none after all).
	HasShadow() bool
	Shadow(ctx context.Context, in *abi.Input, out engine.Output) (s Served, ok bool, err error)
	// Module names the module and the version serving now: "name@vN".
	Module() string
}

// Recorder receives the decisions to record (decisionlog.Recorder).
type Recorder interface {
	Record(*decisionlog.Record)
}

// ShadowResult is what a shadow decision came to.
type ShadowResult string

// Shadow results.
const (
	ShadowAgree   ShadowResult = "agree"
	ShadowDiverge ShadowResult = "diverge"
	ShadowBreach  ShadowResult = "breach"  // the shadow failed; the current version did not
	ShadowSkipped ShadowResult = "skipped" // too many shadow calls in flight
)

// maxShadowsInFlight bounds a policy's shadow calls running at once: a
// shadow runs beside the route, never in its way.
const maxShadowsInFlight = 4

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
	// Recorder, if set, receives decision records: a Sample share (0–1)
	// of the current version's decisions, and every canary and shadow
	// decision.
	Recorder Recorder
	Sample   float64
	// OnShadow, if set, hears what each shadow decision came to.
	OnShadow func(route, kind, module string, r ShadowResult)
}

// Policy decides one kind for one route. A nil *Policy decides nothing.
type Policy[Out any] struct {
	s       Spec[Out]
	shadows chan struct{} // tickets for shadow calls in flight
}

// New returns the policy of spec.
func New[Out any](spec Spec[Out]) *Policy[Out] {
	if spec.Tracer == nil {
		spec.Tracer = tracing.Noop()
	}
	return &Policy[Out]{s: spec, shadows: make(chan struct{}, maxShadowsInFlight)}
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
		sv, err := p.s.Module.Call(ctx, &call, any(&o).(engine.Output))
		if err == nil && p.s.Kind.Check != nil {
			if err = p.s.Kind.Check(&o); err != nil && sv.Reject != nil {
				sv.Reject()
			}
		}
		p.record(&call, sv, &o, err)
		p.shadow(ctx, &call, &o, sv, err)
		if err == nil {
			return o, sv.Module + "@" + sv.Version, true
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

// record records a decision of the current version (sampled) or the
// canary (always).
func (p *Policy[Out]) record(in *abi.Input, sv Served, out *Out, err error) {
	if p.s.Recorder == nil || sv.Module == "" {
		return
	}
	if sv.Role == decisionlog.RoleCurrent && (p.s.Sample <= 0 || (p.s.Sample < 1 && rand.Float64() >= p.s.Sample)) {
		return
	}
	p.s.Recorder.Record(p.newRecord(in, sv, out, err))
}

func (p *Policy[Out]) newRecord(in *abi.Input, sv Served, out *Out, err error) *decisionlog.Record {
	rec := &decisionlog.Record{At: time.Now().UTC(), Route: p.s.Route, Kind: string(p.s.Kind.Name), MessageID: in.MessageID,
		Module: sv.Module, Version: sv.Version, SHA256: sv.SHA256, Role: sv.Role, Input: in,
		Fuel: sv.Stats.Fuel, WallTimeNs: int64(sv.Stats.WallTime)}
	if err != nil {
		rec.Error = err.Error()
		var be *engine.BreachError
		if errors.As(err, &be) {
			rec.Breach = string(be.Kind)
		}
	} else {
		rec.Output, _ = json.Marshal(out)
	}
	return rec
}

// shadow runs the shadow version, if any, on the input the current one
// decided, in the background and bounded: its decision is compared and
// recorded, never acted on.
func (p *Policy[Out]) shadow(ctx context.Context, in *abi.Input, cur *Out, curSv Served, curErr error) {
	if !p.s.Module.HasShadow() {
		return
	}
	select {
	case p.shadows <- struct{}{}:
	default:
		if p.s.OnShadow != nil {
			p.s.OnShadow(p.s.Route, string(p.s.Kind.Name), p.s.ModuleName, ShadowSkipped)
		}
		return
	}
	curOut := *cur
	go func() {
		defer func() { <-p.shadows }()
		var o Out
		sv, ok, err := p.s.Module.Shadow(context.WithoutCancel(ctx), in, any(&o).(engine.Output))
		if !ok {
			return
		}
		if err == nil && p.s.Kind.Check != nil {
			err = p.s.Kind.Check(&o)
		}
		agree := err == nil && curErr == nil && reflect.DeepEqual(curOut, o)
		result := ShadowDiverge
		switch {
		case agree:
			result = ShadowAgree
		case err != nil && curErr == nil:
			result = ShadowBreach
		case err != nil && curErr != nil:
			result, agree = ShadowAgree, true // both failed: the route decided natively either way
		}
		if p.s.OnShadow != nil {
			p.s.OnShadow(p.s.Route, string(p.s.Kind.Name), p.s.ModuleName, result)
		}
		if p.s.Recorder == nil {
			return
		}
		rec := p.newRecord(in, sv, &o, err)
		if curErr == nil {
			rec.CurrentOutput, _ = json.Marshal(&curOut)
		}
		rec.CurrentFuel = curSv.Stats.Fuel
		rec.Agree = &agree
		p.s.Recorder.Record(rec)
	}()
}
