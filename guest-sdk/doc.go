// Package guest is the Go SDK for Breakwater policy modules: WebAssembly
// modules that decide, per route, whether and when to retry a failed call
// (retry), what to do once retries are over (fallback), what to answer
// in place of an unavailable target (stub), and whether a target's answer is
// a success or a failure (classify).
//
// A module is a package main built for WASI preview 1 as a reactor
// (-buildmode=c-shared). It imports this package for the types, and one
// package per kind it implements: guest-sdk/retry, guest-sdk/fallback,
// guest-sdk/stub, guest-sdk/classify. Each of those adds its own export
// (bw_retry, bw_fallback, bw_stub, bw_classify), so a module exports exactly
// the kinds it imports; this package
// adds the exports every module needs (bw_abi_version, bw_alloc). The host
// discovers the kinds from the exports.
//
// The import path is github.com/breakwater-dev/breakwater/guest-sdk and the
// package name is guest: import it without an alias and write guest.Input,
// guest.RetryDecision, guest.Log. guest-sdk is a Go module of its own that
// needs only the standard library, so a module author's go.mod requires it
// and nothing of the host (no NATS, wazero, Prometheus, viper or cobra):
//
//	go get github.com/breakwater-dev/breakwater/guest-sdk
//
// # A module
//
//	package main
//
//	import (
//		"github.com/breakwater-dev/breakwater/guest-sdk"
//		"github.com/breakwater-dev/breakwater/guest-sdk/retry"
//	)
//
//	func init() {
//		retry.Handle(func(in *guest.Input) guest.RetryDecision {
//			if in.Error.Kind == guest.ErrorStatus && in.Error.Status < 500 {
//				return guest.RetryDecision{Retry: false, Reason: "client error"}
//			}
//			return guest.RetryDecision{Retry: true, DelayMs: 100 * int64(in.Attempt)}
//		})
//	}
//
//	func main() {} // required by package main, never called
//
// Handlers are registered from init functions: the host runs them once per
// instance by calling the module's _initialize export. main is not called.
// The complete program is in guest-sdk/example.
//
// # Building
//
// One line, in the directory of the package main:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm .
//
// -buildmode=c-shared is required: it makes a reactor, whose exports can be
// called after _initialize. Add -trimpath -ldflags=-s for a reproducible
// and smaller binary (policies/build.sh does).
//
// # The sandbox
//
// A module sees the input the host hands it and nothing else: no files, no
// environment, no arguments, no network. The clock and random numbers work
// (crypto/rand, math/rand/v2). Standard output and error go to the host's
// log, capped; Log is the structured way to log. Each call runs under limits
// set per route: an instruction budget (fuel), wall time, memory and output
// size.
//
// # Failure
//
// A handler that panics, exceeds a limit or returns an output the host cannot
// decode does not answer: the call traps, and the host counts a breach. It
// then applies the route's native policy for that message, discards the
// instance, and quarantines a module that keeps breaching. There is no way
// for a module to return garbage: decoding errors on either side trap.
//
// # Testing
//
// The handler packages build for any platform (without their exports), so
// a policy can be unit-tested natively: register it and use retry.Call,
// fallback.Call, stub.Call or classify.Call. Package guest-sdk/sdktest
// builds the module with the line above and runs it on the host's own
// engine, with the runtime's limits and fuel metering, reporting the fuel
// each call used: a module that passes its sdktest tests on an input does
// not run out of fuel on that input in production under the same limits.
// sdktest runs the runtime binary (`runtime module run`); see its
// documentation for how it finds one.
//
// The ABI the SDK implements, for writing modules in other languages, is in
// docs/abi.md; package abi holds the records and their wire encoding.
package guest
