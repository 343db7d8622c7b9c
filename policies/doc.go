// Package policies holds the tests and benchmarks of the policy modules
// shipped with Breakwater. Each subdirectory is one module (a package main
// built with the guest SDK for GOOS=wasip1 GOARCH=wasm); build.sh (or
// `task modules`) builds them into modules/<name>.wasm, and the tests here
// run those files on the host's engine, through guest-sdk/sdktest (the
// runtime's `module run`) or host/engine directly. TestGuestSDK also runs
// the tests of guest-sdk, a module of its own that `go test ./...` from the
// repository root does not reach.
package policies
