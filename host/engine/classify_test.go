package engine

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// sleb is the signed LEB128 encoding of an i64.const immediate.
func sleb(v int64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

// constModule is an ABI v1 module exporting each of exports as a kind
// function (i32, i32) -> i64 that returns the record out, stored at address
// 16 of its memory; badSig exports instead take (i32) -> i32.
func constModule(out []byte, exports []string, badSig []string) []byte {
	types := vecOf(
		[]byte{0x60, 0, 1, 0x7F},             // 0: () -> i32
		[]byte{0x60, 1, 0x7F, 1, 0x7F},       // 1: (i32) -> i32
		[]byte{0x60, 2, 0x7F, 0x7F, 1, 0x7E}, // 2: (i32, i32) -> i64
	)
	funcs := [][]byte{uleb(0), uleb(1), uleb(2), uleb(1)} // version, alloc, kind, bad kind
	packed := int64(16)<<32 | int64(len(out))
	code := vecOf(
		codeBody(0x41, 0x01, 0x0B),                                       // i32.const 1
		codeBody(0x41, 0x80, 0x08, 0x0B),                                 // i32.const 1024
		codeBody(append(append([]byte{0x42}, sleb(packed)...), 0x0B)...), // i64.const packed
		codeBody(0x20, 0x00, 0x0B),                                       // local.get 0
	)
	exps := [][]byte{
		append(str("memory"), 0x02, 0x00),
		append(str("bw_abi_version"), 0x00, 0x00),
		append(str("bw_alloc"), 0x00, 0x01),
	}
	for _, name := range exports {
		exps = append(exps, append(str(name), 0x00, 0x02))
	}
	for _, name := range badSig {
		exps = append(exps, append(str(name), 0x00, 0x03))
	}
	data := vecOf(append(append([]byte{0x00, 0x41, 0x10, 0x0B}, uleb(uint32(len(out)))...), out...)) // at i32.const 16
	return binaryModule(
		section(1, types),
		section(3, vecOf(funcs...)),
		section(5, vecOf([]byte{0x00, 0x01})),
		section(7, vecOf(exps...)),
		section(10, code),
		section(11, data),
	)
}

func TestClassifyKind(t *testing.T) {
	e := newEngine(t, Options{QuarantineAfter: 1000})
	ctx := context.Background()
	permanent := (&abi.ClassifyDecision{Verdict: abi.VerdictPermanent, Reason: "wat"}).MarshalABI(nil)

	// Inspect and DryRun find the kind, alone or beside another.
	for _, tc := range []struct {
		name    string
		exports []string
		want    []Kind
	}{
		{"classify only", []string{"bw_classify"}, []Kind{KindClassify}},
		{"retry and classify", []string{"bw_classify", "bw_retry"}, []Kind{KindRetry, KindClassify}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wasm := constModule(permanent, tc.exports, nil)
			info, err := e.Inspect(ctx, wasm)
			if err != nil || !reflect.DeepEqual(info.Kinds, tc.want) {
				t.Fatalf("Inspect: %+v, %v; want kinds %v", info, err, tc.want)
			}
			if !slices.Contains(tc.exports, "bw_retry") { // the constant output is no RetryDecision
				if info, err = e.DryRun(ctx, wasm, Limits{}); err != nil || !reflect.DeepEqual(info.Kinds, tc.want) || info.ABIVersion != 1 {
					t.Fatalf("DryRun: %+v, %v", info, err)
				}
			}
		})
	}

	// Decide calls bw_classify with the answer and decodes the decision.
	m, err := e.Load(ctx, LoadSpec{Name: "classify-const", Version: "1", Wasm: constModule(permanent, []string{"bw_classify"}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	d, err := Decide[abi.ClassifyDecision](ctx, m, KindClassify, SampleClassifyInput(), Limits{})
	if err != nil || d != (abi.ClassifyDecision{Verdict: abi.VerdictPermanent, Reason: "wat"}) {
		t.Fatalf("Decide classify: %+v, %v", d, err)
	}
	// A kind the module does not export is an ABI breach.
	var be *BreachError
	if _, err := Decide[abi.RetryDecision](ctx, m, KindRetry, SampleInput(), Limits{}); !errors.As(err, &be) || be.Kind != BreachABI {
		t.Fatalf("Decide retry on a classify module: %v, want an abi breach", err)
	}

	// A verdict outside the ABI's is a bad output, and fails the dry run.
	bad := constModule((&abi.ClassifyDecision{Verdict: "maybe"}).MarshalABI(nil), []string{"bw_classify"}, nil)
	mb, err := e.Load(ctx, LoadSpec{Name: "classify-bad", Version: "1", Wasm: bad})
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close(ctx)
	if _, err := Decide[abi.ClassifyDecision](ctx, mb, KindClassify, SampleClassifyInput(), Limits{}); !errors.As(err, &be) || be.Kind != BreachBadOutput || be.Export != "bw_classify" {
		t.Fatalf("unknown verdict: %v, want a bad_output breach of bw_classify", err)
	}
	var ve *ValidationError
	if _, err := e.DryRun(ctx, bad, Limits{}); !errors.As(err, &ve) || ve.Rule != "dry_run" || !strings.Contains(ve.Detail, "bw_classify") {
		t.Fatalf("dry run of a bad classify module: %v", err)
	}

	// bw_classify has the signature of the other kinds.
	_, err = e.Inspect(ctx, constModule(permanent, []string{"bw_retry"}, []string{"bw_classify"}))
	if !errors.As(err, &ve) || ve.Rule != "bad_signature" || !strings.Contains(ve.Detail, "bw_classify") {
		t.Fatalf("bw_classify (i32) -> i32: want bad_signature, got %v", err)
	}
}

func TestSampleInputFor(t *testing.T) {
	in := SampleInputFor(KindClassify)
	if in.ResponseStatus != 200 || len(in.ResponseBody) == 0 || in.ResponseHeaders["Content-Type"] != "application/json" || in.Target == "" || in.Error.Kind != abi.ErrorNone {
		t.Errorf("classify sample: %+v", in)
	}
	for _, k := range []Kind{KindRetry, KindFallback, KindStub} {
		if !reflect.DeepEqual(SampleInputFor(k), SampleInput()) {
			t.Errorf("sample of %s is not SampleInput", k)
		}
	}
	var out abi.Input
	if err := out.UnmarshalABI(in.MarshalABI(nil)); err != nil || out.ResponseStatus != 200 || string(out.ResponseBody) != string(in.ResponseBody) {
		t.Errorf("classify sample round trip: %+v, %v", out, err)
	}
}
