#!/bin/sh
# Rebuilds retry.wasm, the Extism peer plugin of the benchmarks, with plain
# Go (no TinyGo). Same flags as policies/build.sh, so the build is
# reproducible: the same sources, module versions and Go version give the
# same bytes (check with sha256sum).
set -eu
cd "$(dirname "$0")"
GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOFLAGS= \
	go build -trimpath -buildvcs=false -buildmode=c-shared -ldflags=-s \
	-o retry.wasm .
sha256sum retry.wasm
