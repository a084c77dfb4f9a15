#!/usr/bin/env bash
# The Go client's checks: go vet and go test, offline (no Go module proxy; gorilla/websocket from
# Debian's golang-github-gorilla-websocket-dev, see go.mod). The tests start realm-server
# themselves (REALM_SERVER_BIN, default target/debug/realm-server; REALM_MODEL), or use the one
# at REALM_TEST_URL with the keys REALM_TEST_KEY, REALM_TEST_LIMITED_KEY, REALM_TEST_METRICS_KEY
# (scripts/test-clients.sh); S6 always starts its own.
set -euo pipefail
cd "$(dirname "$0")"
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
export GOPROXY=off GOFLAGS=-mod=mod GOSUMDB=off GOTOOLCHAIN=local
export GOCACHE="$CACHE/go/cache" GOPATH="$CACHE/go/path"
mkdir -p "$GOCACHE" "$GOPATH"
go vet ./...
go test -count=1 -timeout 300s "$@" ./...
