package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/headers"
)

// SampleInput is the input of dry runs.
func SampleInput() *abi.Input {
	return &abi.Input{
		Route: "dry-run", Subject: "bw.in.dry-run", MessageID: "dry-run-1",
		Attempt: 1, MaxAttempts: 3, ElapsedMs: 120,
		Error:        abi.AttemptError{Attempt: 1, AtUnixMs: 1_700_000_000_000, Kind: abi.ErrorStatus, Status: 503, Message: "POST http://example/ answered 503"},
		BreakerState: "closed",
		Headers:      map[string]string{"Nats-Msg-Id": "dry-run-1"},
		Payload:      []byte(`{"id":"sample","sku":"A-1"}`),
	}
}

// SampleClassifyInput is the input of dry runs of KindClassify: the sample
// with a target's answer to judge (a 200 with a JSON body).
func SampleClassifyInput() *abi.Input {
	in := SampleInput()
	in.Error = abi.AttemptError{} // the attempt answered: no error yet
	in.Target = "dry-run-target"
	in.ResponseStatus = 200
	in.ResponseHeaders = map[string]string{"Content-Type": "application/json"}
	in.ResponseBody = []byte(`{"id":"sample","status":"accepted"}`)
	return in
}

// SampleInputFor is the dry-run (and warm-up) input of kind k:
// SampleClassifyInput for KindClassify, SampleInput for the others.
func SampleInputFor(k Kind) *abi.Input {
	if k == KindClassify {
		return SampleClassifyInput()
	}
	return SampleInput()
}

// DryRunOptions are what a dry run calls a module with.
type DryRunOptions struct {
	// Config is the module's config as a route would give it (JSON): it
	// is the Input.Config of every dry-run call whose input has none. A
	// module that requires a config fails a dry run without one.
	Config []byte
	// Inputs are the inputs to call each kind on, instead of its sample
	// input (SampleInputFor). A kind the module does not export is an
	// error.
	Inputs map[Kind]*abi.Input
	// Input, if set, is the input of every kind Inputs does not name.
	Input *abi.Input
}

// input is the dry-run input of kind k.
func (o *DryRunOptions) input(k Kind) (in *abi.Input, sample bool) {
	if in = o.Inputs[k]; in == nil {
		in = o.Input
	}
	if in == nil {
		in, sample = SampleInputFor(k), true
	} else {
		c := *in
		in = &c
	}
	if len(in.Config) == 0 && len(o.Config) > 0 {
		in.Config = o.Config
	}
	return in, sample
}

// DryRun validates a module fully: Inspect, then load it and call every
// kind it exports once within lim, on its sample input (SampleInputFor) or
// the one opts gives, with opts' config. A failure is a *ValidationError
// with Rule "dry_run" (or the rule that failed earlier). At most one opts
// is used.
func (e *Engine) DryRun(ctx context.Context, wasm []byte, lim Limits, opts ...DryRunOptions) (*Info, error) {
	var o DryRunOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	m, err := e.Load(ctx, LoadSpec{Name: "dry-run", Version: "0", Wasm: wasm, Limits: lim})
	if err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(o.Inputs)) {
		if !slices.Contains(m.info.Kinds, k) {
			m.Close(ctx)
			return nil, fmt.Errorf("dry run: an input is given for kind %s, but the module exports only %s", k, kindList(m.info.Kinds))
		}
	}
	defer m.Close(ctx)
	for _, k := range m.info.Kinds {
		in, sample := o.input(k)
		switch k {
		case KindRetry:
			_, err = Decide[abi.RetryDecision](ctx, m, k, in, Limits{})
		case KindFallback:
			_, err = Decide[abi.FallbackDecision](ctx, m, k, in, Limits{})
		case KindClassify:
			_, err = Decide[abi.ClassifyDecision](ctx, m, k, in, Limits{})
		case KindStub:
			var s abi.Stub
			s, err = Decide[abi.Stub](ctx, m, k, in, Limits{})
			for _, h := range slices.Sorted(maps.Keys(s.Headers)) {
				switch {
				case headers.Reserved(h):
					m.info.Warnings = append(m.info.Warnings, fmt.Sprintf("bw_stub sets header %q, in the Nats- or Bw- namespace that belongs to the runtime: it is dropped from every stub outcome", h))
				case !headers.Token(h):
					m.info.Warnings = append(m.info.Warnings, fmt.Sprintf("bw_stub sets header %q, which is not a valid header name (white space, ':' or non-ASCII): it is dropped from every stub outcome", h))
				}
			}
		}
		if err != nil {
			what := "the given input"
			if sample {
				what = "a sample input"
			}
			if len(in.Config) > 0 {
				what += " with the given config"
			}
			return nil, &ValidationError{Rule: "dry_run", Detail: fmt.Sprintf("%s on %s failed: %v", k.Export(), what, err), Err: err}
		}
	}
	return m.info, nil
}

// kindList is "retry, stub".
func kindList(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
