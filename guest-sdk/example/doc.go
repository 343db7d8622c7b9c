// Command example is the smallest useful policy module: a retry policy that
// retries server errors, timeouts and connection failures with a linear
// backoff, and gives up on client errors.
//
// Build it with:
//
//	GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -ldflags=-s -o example.wasm ./guest-sdk/example
package main
