#!/bin/sh
# Builds the policy modules in policies/ into modules/<name>.wasm, and the
# minimal WAT module modules/retry-constant.wat into modules/retry-constant.wasm.
# Same flags as the `modules` task of Taskfile.yml. The builds are
# reproducible: the same sources and Go version give the same bytes.
#
# Usage: policies/build.sh [name...]   (default: every module)
set -eu
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
	set -- retry-exponential retry-status-aware fallback-cache-then-stub stub-template classify-json-error
fi

for name in "$@"; do
	echo "building modules/$name.wasm"
	GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOFLAGS= \
		go build -trimpath -buildvcs=false -buildmode=c-shared -ldflags=-s \
		-o "modules/$name.wasm" "./policies/$name"
done

if command -v wat2wasm >/dev/null 2>&1; then
	echo "building modules/retry-constant.wasm"
	wat2wasm modules/retry-constant.wat -o modules/retry-constant.wasm
else
	echo "wat2wasm not found (package wabt): modules/retry-constant.wasm left as is" >&2
fi

# The bytes depend on the Go version: record it for the reproducibility
# test (policies/build_test.go).
go env GOVERSION > modules/BUILT_WITH
sha256sum modules/*.wasm
