// Package policies holds the tests and benchmarks of the policy modules
// shipped with Breakwater. Each subdirectory is one module (a package main
// built with the guest SDK for GOOS=wasip1 GOARCH=wasm); build.sh (or
// `task modules`) builds them into modules/<name>.wasm, and the tests here
// load those files with wazero and call them as the host does.
package policies
