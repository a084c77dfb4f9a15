#!/usr/bin/env bash
# The clients' tests against the real realm-server on the real model (clients/SCENARIOS.md):
# the Python client (clients/python) under pytest, from its source tree (no install step), and
# the Go client (clients/go: go vet + go test, offline, Debian's Go and gorilla/websocket), and
# the Rust client (crates/realm-client: its server tests are #[ignore]d in `cargo test
# --workspace`, which runs before the server binary exists, and run here), and the Java client
# (clients/java: javac with Debian's gson and JUnit 5).
# The server binary is the debug build scripts/test-server.sh makes; the packages come from
# the venv scripts/setup.sh makes.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
VENV="$CACHE/venv"
{ [ -x "$VENV/bin/python" ] && command -v go >/dev/null && command -v javac >/dev/null; } || scripts/setup.sh
cargo build --locked -p realm-server
export REALM_SERVER_BIN="$PWD/target/debug/realm-server"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider clients/python/tests
clients/go/test.sh
cargo test --locked -p realm-client -- --ignored
clients/java/test.sh
