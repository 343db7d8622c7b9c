// Package sdktest runs a built policy module on the Breakwater host's own
// engine, for tests and benchmarks of modules: the same calling code, the
// same limits and the same fuel metering as the runtime in production, so
// that a module that passes its tests on an input cannot then run out of
// fuel on that input in production (under the same limits).
//
// # Building the module
//
// A module is a package main built for WASI preview 1 as a reactor, with
// one line:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm .
//
// Build runs that line for a test:
//
//	wasm := filepath.Join(t.TempDir(), "policy.wasm")
//	if err := sdktest.Build(ctx, ".", wasm); err != nil {
//		t.Fatal(err)
//	}
//
// # Calling it
//
//	m, err := sdktest.Load(ctx, wasm, sdktest.Options{Config: []byte(`{"delay_ms": 50}`)})
//	...
//	defer m.Close()
//	d, st, err := m.Retry(ctx, &abi.Input{Route: "orders", Attempt: 1,
//		Error: abi.AttemptError{Kind: abi.ErrorStatus, Status: 503}})
//	// d is the abi.RetryDecision, st.Fuel the fuel the call was charged.
//
// An error the engine reports as a breach (a panic, fuel or wall time
// exhausted, memory over its limit, an output the host cannot decode) is a
// *BreachError whose Kind says which.
//
// # The runtime
//
// The calls are made by the runtime binary's `module run` command, one
// process per Module and policy kind, started on the first call of that
// kind and fed one JSON input per call (see Module). The binary is, in this
// order: Options.Runtime; the environment variable BREAKWATER_RUNTIME; or,
// inside the Breakwater repository, one built with
// `go build github.com/breakwater-dev/breakwater/cmd/runtime` once per test
// process (into the user's cache directory). A module author outside the
// repository installs it once, at the version of the host the modules will
// run on, and names it:
//
//	go install github.com/breakwater-dev/breakwater/cmd/runtime@<version>
//	export BREAKWATER_RUNTIME=$(go env GOPATH)/bin/runtime
//
// Module is safe for concurrent use; calls of one kind are serialized.
package sdktest
