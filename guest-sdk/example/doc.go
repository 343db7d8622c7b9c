// Command example is the smallest useful policy module: a retry policy that
// retries server errors, timeouts and connection failures with a linear
// backoff, and gives up on client errors.
//
// Build it with:
//
//	cd guest-sdk/example && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o example.wasm .
package main
