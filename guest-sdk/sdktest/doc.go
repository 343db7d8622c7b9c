// Package sdktest loads a built policy module into wazero and calls it the
// way the Breakwater host does (ABI v1, docs/abi.md), for tests and
// benchmarks of modules outside the runtime.
//
// It is a test harness, not the host's engine: there is no fuel metering, no
// pool and no signature check. What it does reproduce is the contract: WASI
// preview 1 with no files, environment or arguments; a bw_host.log import
// whose messages are recorded; _initialize once per instance; and per call
// bw_alloc, a write of the encoded Input, the kind's export, and a read of
// the output record at the returned (ptr, len).
//
//	rt, err := sdktest.NewRuntime(ctx, sdktest.Options{})
//	...
//	defer rt.Close(ctx)
//	m, err := rt.Load(ctx, wasmBytes)
//	...
//	d, err := m.Retry(ctx, &abi.Input{Route: "orders", Attempt: 1,
//		Error: abi.AttemptError{Kind: abi.ErrorStatus, Status: 503}})
//
// A Module is not safe for concurrent use (nor is a module instance); a
// Runtime is.
package sdktest
