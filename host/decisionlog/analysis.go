package decisionlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/engine"
)

// DefaultExamples is the number of divergent examples Diff and Replay
// keep.
const DefaultExamples = 5

// Example is a decision on which two versions disagreed.
type Example struct {
	At        time.Time `json:"at"`
	Route     string    `json:"route"`
	Kind      string    `json:"kind"`
	MessageID string    `json:"message_id"`
	// Input summarizes the input record both versions were given.
	Input string `json:"input"`
	// Current and Other are the two decisions, as JSON, or "error: ..."
	// (with the breach) when the call failed. Other is the shadow's
	// decision (Diff) or the candidate's (Replay).
	Current string `json:"current"`
	Other   string `json:"other"`
}

// FuelDelta compares the fuel of two versions over the same inputs.
type FuelDelta struct {
	// CurrentMean and OtherMean are the mean fuel per decision of the
	// version that decided (current, or the recorded one) and of the
	// shadow or candidate.
	CurrentMean float64 `json:"current_mean"`
	OtherMean   float64 `json:"other_mean"`
	// Delta is OtherMean − CurrentMean; Relative is Delta / CurrentMean
	// (0 when CurrentMean is 0).
	Delta    float64 `json:"delta"`
	Relative float64 `json:"relative"`
}

func fuelDelta(cur, other int64, n int) FuelDelta {
	if n == 0 {
		return FuelDelta{}
	}
	d := FuelDelta{CurrentMean: float64(cur) / float64(n), OtherMean: float64(other) / float64(n)}
	d.Delta = d.OtherMean - d.CurrentMean
	if d.CurrentMean != 0 {
		d.Relative = d.Delta / d.CurrentMean
	}
	return d
}

// DiffReport compares a shadow with the current version over the shadow's
// records.
type DiffReport struct {
	// Total is the number of shadow records compared; records of another
	// role are not (Ignored counts them).
	Total   int `json:"total"`
	Ignored int `json:"ignored"`
	Agreed  int `json:"agreed"`
	// AgreementRate is Agreed / Total (0 when Total is 0).
	AgreementRate float64 `json:"agreement_rate"`
	// Breaches counts the shadow's failed calls, by breach ("error" when
	// the record names none).
	Breaches       int            `json:"breaches"`
	BreachesByKind map[string]int `json:"breaches_by_kind,omitempty"`
	// Versions are the shadow versions the records name ("v3"), sorted.
	Versions []string `json:"versions,omitempty"`
	// Divergent counts the records that disagree; Examples holds the
	// first of them (up to the number asked for).
	Divergent int       `json:"divergent"`
	Examples  []Example `json:"examples"`
	// Fuel compares the mean fuel of the current version (CurrentFuel of
	// the records) and of the shadow, over every shadow record.
	Fuel FuelDelta `json:"fuel"`
}

// Diff compares the shadow's decisions with the current version's over
// the shadow records of recs (role shadow), keeping DefaultExamples
// divergent examples.
func Diff(recs []*Record) DiffReport { return DiffExamples(recs, DefaultExamples) }

// DiffExamples is Diff keeping up to examples divergent examples.
//
// A record agrees when the host found the two decisions the same (its
// Agree), or, for a record without Agree, when both calls succeeded and
// their decisions are the same once decoded as the kind's output record,
// or both failed.
func DiffExamples(recs []*Record, examples int) DiffReport {
	rep := DiffReport{Examples: []Example{}}
	var curFuel, shadowFuel int64
	versions := map[string]bool{}
	for _, r := range recs {
		if r == nil || r.Role != RoleShadow {
			rep.Ignored++
			continue
		}
		rep.Total++
		versions[r.Version] = true
		curFuel += r.CurrentFuel
		shadowFuel += r.Fuel
		if failed(r) {
			rep.Breaches++
			if rep.BreachesByKind == nil {
				rep.BreachesByKind = map[string]int{}
			}
			rep.BreachesByKind[breachOf(r)]++
		}
		if shadowAgrees(r) {
			rep.Agreed++
			continue
		}
		rep.Divergent++
		if len(rep.Examples) < examples {
			cur := rawOrNone(r.CurrentOutput)
			if len(r.CurrentOutput) == 0 {
				cur = "no decision recorded (the current version's call failed, or the record was cut)"
			}
			rep.Examples = append(rep.Examples, Example{At: r.At, Route: r.Route, Kind: r.Kind, MessageID: r.MessageID,
				Input: SummarizeInput(r.Kind, r.Input), Current: cur, Other: recordedOutput(r)})
		}
	}
	if rep.Total > 0 {
		rep.AgreementRate = float64(rep.Agreed) / float64(rep.Total)
	}
	rep.Fuel = fuelDelta(curFuel, shadowFuel, rep.Total)
	rep.Versions = sortedSet(versions)
	return rep
}

func shadowAgrees(r *Record) bool {
	if r.Agree != nil {
		return *r.Agree
	}
	if failed(r) || len(r.CurrentOutput) == 0 {
		return false
	}
	eq, err := SameDecision(r.Kind, r.CurrentOutput, r.Output)
	return err == nil && eq
}

// Skip reasons of Replay.
const (
	SkipShadow    = "shadow records (their decisions were not acted on)"
	SkipTruncated = "truncated records (input or output cut to fit in a message)"
	SkipNoInput   = "records without an input"
	SkipBadOutput = "records whose output does not decode as the kind's decision"
)

// ReplayedRecord is one record replayed.
type ReplayedRecord struct {
	At        time.Time `json:"at"`
	Route     string    `json:"route"`
	Kind      string    `json:"kind"`
	MessageID string    `json:"message_id"`
	// Version and Role are the recorded version's.
	Version string `json:"version"`
	Role    string `json:"role"`
	// RecordedFuel is the fuel the record states; CandidateFuel the fuel
	// of the candidate's call.
	RecordedFuel  int64 `json:"recorded_fuel"`
	CandidateFuel int64 `json:"candidate_fuel"`
	Agree         bool  `json:"agree"`
	SameAction    bool  `json:"same_action"`
	// Breach is the candidate's breach ("error" for a failure naming
	// none); "" when its call succeeded.
	Breach string `json:"breach,omitempty"`
}

// ReplayReport compares a candidate module with the decisions recorded.
type ReplayReport struct {
	// Module and Version name the candidate.
	Module  string `json:"module"`
	Version string `json:"version"`
	// Compared is the number of records replayed; Skipped counts the
	// others by reason.
	Compared int            `json:"compared"`
	Skipped  map[string]int `json:"skipped,omitempty"`
	Agreed   int            `json:"agreed"`
	// AgreementRate is Agreed / Compared (0 when Compared is 0).
	AgreementRate float64 `json:"agreement_rate"`
	// ActionAgreed counts the decisions that took the same action, even
	// if a detail differs: the same retry or not (the delay may differ: a
	// jittered backoff never repeats its delays), fallback action,
	// classify verdict; a stub's whole answer. ActionAgreementRate is
	// ActionAgreed / Compared.
	ActionAgreed        int     `json:"action_agreed"`
	ActionAgreementRate float64 `json:"action_agreement_rate"`
	// Breaches counts the candidate's failed calls; BreachesByKind by
	// breach.
	Breaches       int            `json:"breaches"`
	BreachesByKind map[string]int `json:"breaches_by_kind,omitempty"`
	Divergent      int            `json:"divergent"`
	Examples       []Example      `json:"examples"`
	// RecordedFuel and CandidateFuel are the fuel summed over the
	// records compared; Fuel compares their means.
	RecordedFuel  int64     `json:"recorded_fuel"`
	CandidateFuel int64     `json:"candidate_fuel"`
	Fuel          FuelDelta `json:"fuel"`
	// Records are the records compared, in order, with the candidate's
	// fuel for each.
	Records []ReplayedRecord `json:"records"`
}

// ReplayOptions tune ReplayWith.
type ReplayOptions struct {
	// Examples bounds the divergent examples kept (0: DefaultExamples,
	// < 0: none).
	Examples int
	// Limits of the candidate's calls (zero fields: the module's).
	Limits engine.Limits
}

// Replay runs the candidate m on the input of each record whose decision
// was acted on (role current or canary) and compares its decision with
// the recorded one. See ReplayWith.
func Replay(ctx context.Context, m *engine.Module, recs []*Record) (ReplayReport, error) {
	return ReplayWith(ctx, m, recs, ReplayOptions{})
}

// ReplayWith is Replay with options.
//
// Shadow records, truncated records, records without an input and records
// of a kind m does not export are skipped, and counted by reason. Two
// decisions agree when they are the same once decoded as the kind's output
// record, or when both calls failed (the route decided natively either
// way). Load m Deterministic for fuel that depends on the input alone.
// The error is ctx's, with the report as far as it got.
func ReplayWith(ctx context.Context, m *engine.Module, recs []*Record, o ReplayOptions) (ReplayReport, error) {
	if o.Examples == 0 {
		o.Examples = DefaultExamples
	}
	rep := ReplayReport{Module: m.Name(), Version: m.Version(), Examples: []Example{}, Records: []ReplayedRecord{}}
	skip := func(why string) {
		if rep.Skipped == nil {
			rep.Skipped = map[string]int{}
		}
		rep.Skipped[why]++
	}
	exports := map[string]bool{}
	for _, k := range m.Info().Kinds {
		exports[string(k)] = true
	}
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			rep.finish()
			return rep, err
		}
		switch {
		case r == nil:
			continue
		case r.Role == RoleShadow:
			skip(SkipShadow)
			continue
		case r.Truncated != "":
			skip(SkipTruncated)
			continue
		case r.Input == nil:
			skip(SkipNoInput)
			continue
		case !exports[r.Kind]:
			skip(fmt.Sprintf("records of kind %s, which the candidate does not export", r.Kind))
			continue
		}
		kind := engine.Kind(r.Kind)
		var recorded engine.Output
		if !failed(r) {
			var err error
			if recorded, err = decodeOutput(r.Kind, r.Output); err != nil {
				skip(SkipBadOutput)
				continue
			}
		}
		in := *r.Input
		out := engine.NewOutput(kind)
		st, err := m.Run(ctx, kind, &in, o.Limits, out)
		if err != nil && ctx.Err() != nil {
			rep.finish()
			return rep, ctx.Err()
		}
		rr := ReplayedRecord{At: r.At, Route: r.Route, Kind: r.Kind, MessageID: r.MessageID, Version: r.Version, Role: r.Role,
			RecordedFuel: r.Fuel, CandidateFuel: st.Fuel}
		candidate := ""
		if err != nil {
			rr.Breach = "error"
			var be *engine.BreachError
			if errors.As(err, &be) {
				rr.Breach = string(be.Kind)
			}
			rep.Breaches++
			if rep.BreachesByKind == nil {
				rep.BreachesByKind = map[string]int{}
			}
			rep.BreachesByKind[rr.Breach]++
			candidate = fmt.Sprintf("error (%s): %v", rr.Breach, err)
			rr.Agree = failed(r)
			rr.SameAction = rr.Agree
		} else {
			// Through JSON and back, as the recorded decision went, so
			// that both are compared in the same form.
			b, merr := json.Marshal(out)
			candidate = string(b)
			if merr == nil && recorded != nil {
				if back, derr := decodeOutput(r.Kind, b); derr == nil {
					rr.Agree = reflect.DeepEqual(recorded, back)
					rr.SameAction = sameAction(recorded, back)
				}
			}
		}
		rep.Compared++
		rep.RecordedFuel += r.Fuel
		rep.CandidateFuel += st.Fuel
		if rr.SameAction {
			rep.ActionAgreed++
		}
		if rr.Agree {
			rep.Agreed++
		} else {
			rep.Divergent++
			if len(rep.Examples) < o.Examples {
				rep.Examples = append(rep.Examples, Example{At: r.At, Route: r.Route, Kind: r.Kind, MessageID: r.MessageID,
					Input: SummarizeInput(r.Kind, r.Input), Current: recordedOutput(r), Other: candidate})
			}
		}
		rep.Records = append(rep.Records, rr)
	}
	rep.finish()
	return rep, nil
}

func (rep *ReplayReport) finish() {
	if rep.Compared > 0 {
		rep.AgreementRate = float64(rep.Agreed) / float64(rep.Compared)
		rep.ActionAgreementRate = float64(rep.ActionAgreed) / float64(rep.Compared)
	}
	rep.Fuel = fuelDelta(rep.RecordedFuel, rep.CandidateFuel, rep.Compared)
}

// SameDecision says whether two decisions of kind, as JSON, are the same
// once decoded as the kind's output record (abi.RetryDecision,
// FallbackDecision, Stub, ClassifyDecision): field order, spacing and
// the form of a stub's payload do not matter.
func SameDecision(kind string, a, b json.RawMessage) (bool, error) {
	da, err := decodeOutput(kind, a)
	if err != nil {
		return false, err
	}
	db, err := decodeOutput(kind, b)
	if err != nil {
		return false, err
	}
	return reflect.DeepEqual(da, db), nil
}

// decodeOutput decodes b as kind's output record, normalized: a stub's
// empty payload and headers are nil.
func decodeOutput(kind string, b json.RawMessage) (engine.Output, error) {
	out := engine.NewOutput(engine.Kind(kind))
	if out == nil {
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	if len(b) == 0 {
		return nil, errors.New("no decision")
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, err
	}
	if s, ok := out.(*abi.Stub); ok {
		if len(s.Payload) == 0 {
			s.Payload = nil
		}
		if len(s.Headers) == 0 {
			s.Headers = nil
		}
	}
	return out, nil
}

// sameAction reports whether two decisions of one kind take the same
// action (see ReplayReport.ActionAgreed).
func sameAction(a, b engine.Output) bool {
	switch x := a.(type) {
	case *abi.RetryDecision:
		y, ok := b.(*abi.RetryDecision)
		return ok && x.Retry == y.Retry
	case *abi.FallbackDecision:
		y, ok := b.(*abi.FallbackDecision)
		return ok && x.Action == y.Action
	case *abi.ClassifyDecision:
		y, ok := b.(*abi.ClassifyDecision)
		return ok && x.Verdict == y.Verdict
	}
	return reflect.DeepEqual(a, b)
}

func failed(r *Record) bool { return r.Breach != "" || r.Error != "" }

func breachOf(r *Record) string {
	if r.Breach != "" {
		return r.Breach
	}
	return "error"
}

// recordedOutput is a record's decision, or its failure.
func recordedOutput(r *Record) string {
	if failed(r) {
		return fmt.Sprintf("error (%s): %s", breachOf(r), r.Error)
	}
	return rawOrNone(r.Output)
}

func rawOrNone(b json.RawMessage) string {
	if len(b) == 0 {
		return "none"
	}
	return string(b)
}

func sortedSet(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// SummarizeInput is a one-line summary of an input record of kind: what a
// policy of that kind decides on.
func SummarizeInput(kind string, in *abi.Input) string {
	if in == nil {
		return "no input recorded"
	}
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	attemptErr := func() {
		e := in.Error
		switch {
		case e.Kind == abi.ErrorNone:
			add("no error")
		case e.Status != 0:
			add("error %s %d", e.Kind, e.Status)
		default:
			add("error %s", e.Kind)
		}
	}
	switch engine.Kind(kind) {
	case engine.KindRetry, engine.KindFallback:
		add("attempt %d/%d", in.Attempt, in.MaxAttempts)
		attemptErr()
		if in.RetryAfterMs > 0 {
			add("retry-after %dms", in.RetryAfterMs)
		}
		if in.BreakerState != "" {
			add("breaker %s", in.BreakerState)
		}
		if engine.Kind(kind) == engine.KindFallback {
			if in.CacheAvailable {
				add("cache available (age %dms)", in.CacheAgeMs)
			} else {
				add("no cache")
			}
		}
	case engine.KindClassify:
		add("response status %d", in.ResponseStatus)
		add("body %d bytes", len(in.ResponseBody))
		if ct := in.ResponseHeaders["Content-Type"]; ct != "" {
			add("content-type %s", ct)
		}
	case engine.KindStub:
		add("payload %d bytes", len(in.Payload))
		if in.Error.Kind != abi.ErrorNone {
			attemptErr()
		}
	default:
		add("attempt %d", in.Attempt)
	}
	if in.ElapsedMs > 0 {
		add("elapsed %dms", in.ElapsedMs)
	}
	if in.DeadlineMs > 0 {
		add("deadline %dms", in.DeadlineMs)
	}
	if in.Target != "" {
		add("target %s", in.Target)
	}
	return strings.Join(parts, ", ")
}
