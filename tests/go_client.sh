#!/bin/sh
# The Go client's tests (gofmt, go vet, go test) against the portd of this
# build. Usage: go_client.sh PORTD CLIENT-DIR CACHE-DIR
# Exits 77 (skipped) only when no Go toolchain is installed.
set -eu
portd=$1
dir=$2
cache=$3
if ! command -v go >/dev/null 2>&1; then
	echo "SKIPPED: go is not installed (scripts/deps.sh test installs golang-go)" >&2
	exit 77
fi
# A writable cache in the build tree, and no network: the module has no
# dependencies.
export GOCACHE="$cache/cache" GOPATH="$cache/path" GOPROXY=off GOFLAGS=
cd "$dir"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "not gofmt'd: $unformatted" >&2
	exit 1
fi
go vet ./...
PORTD_BIN=$portd exec go test -count=1 ./...
