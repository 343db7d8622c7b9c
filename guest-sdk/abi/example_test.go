package abi_test

import (
	"errors"
	"fmt"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// The host encodes an Input and decodes the module's RetryDecision; the
// guest does the reverse. MarshalABI appends, so one buffer serves every
// call.
func Example() {
	in := abi.Input{
		Route:   "orders",
		Attempt: 2,
		Error:   abi.AttemptError{Kind: abi.ErrorStatus, Status: 503},
	}
	buf := in.MarshalABI(nil)
	fmt.Printf("input: % x\n", buf)

	var decoded abi.Input
	if err := decoded.UnmarshalABI(buf); err != nil {
		panic(err)
	}
	fmt.Println("route:", decoded.Route, "status:", decoded.Error.Status)

	out := (&abi.RetryDecision{Retry: true, DelayMs: 250}).MarshalABI(buf[:0])
	fmt.Printf("output: % x\n", out)
	// Output:
	// input: 0a 06 6f 72 64 65 72 73 20 02 3a 0b 1a 06 73 74 61 74 75 73 20 f7 03
	// route: orders status: 503
	// output: 08 01 10 fa 01
}

// Decoding errors say which record and field are at fault, and where.
func ExampleDecodeError() {
	var d abi.FallbackDecision
	err := d.UnmarshalABI([]byte{0x0a, 0x04, 'd', 'r', 'o', 'p'})
	fmt.Println(err)

	var de *abi.DecodeError
	if errors.As(err, &de) {
		fmt.Println(de.Record, de.Field, de.Offset, errors.Is(err, abi.ErrInvalidValue))
	}

	err = d.UnmarshalABI(nil)
	fmt.Println(err, errors.Is(err, abi.ErrMissingField))
	// Output:
	// abi: decoding FallbackDecision.action at offset 0: unknown action "drop" (want cache, stub, dead_letter or fail)
	// FallbackDecision action 0 true
	// abi: decoding FallbackDecision.action: required field is missing true
}

// A classify module judges the target's answer, which the host hands it in
// the Input's response fields.
func ExampleClassifyDecision() {
	in := abi.Input{Route: "orders", Target: "orders-api", ResponseStatus: 200, ResponseBody: []byte(`{"error":"busy"}`)}
	fmt.Printf("input: % x\n", in.MarshalABI(nil))

	out := (&abi.ClassifyDecision{Verdict: abi.VerdictRetryable, Reason: "busy"}).MarshalABI(nil)
	fmt.Printf("output: % x\n", out)

	var d abi.ClassifyDecision
	err := d.UnmarshalABI([]byte{0x0a, 0x02, 'o', 'k'})
	fmt.Println(err, errors.Is(err, abi.ErrInvalidValue))
	// Output:
	// input: 0a 06 6f 72 64 65 72 73 92 01 0a 6f 72 64 65 72 73 2d 61 70 69 98 01 c8 01 a2 01 10 7b 22 65 72 72 6f 72 22 3a 22 62 75 73 79 22 7d
	// output: 0a 09 72 65 74 72 79 61 62 6c 65 12 04 62 75 73 79
	// abi: decoding ClassifyDecision.verdict at offset 0: unknown verdict "ok" (want success, retryable or permanent) true
}
