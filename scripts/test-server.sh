#!/usr/bin/env bash
# The server's tests: the real realm-server binary on the real model, driven by the official
# `openai` Python package (and `websockets` for the realm.v1 protocol) under pytest. The
# Python packages live in a venv in the cache (scripts/setup.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
VENV="$CACHE/venv"
[ -x "$VENV/bin/python" ] || scripts/setup.sh
cargo build --locked -p realm-server -p realm-cli
export REALM_SERVER_BIN="$PWD/target/debug/realm-server" REALM_CLI_BIN="$PWD/target/debug/realm"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider native-server/tests "$@"
