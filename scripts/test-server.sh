#!/usr/bin/env bash
# The server's tests: the real realm-server binary on the real model, driven by the official
# `openai` Python package (and `websockets` for the realm.v1 protocol) under pytest. The
# Python packages live in a venv in the cache (scripts/setup.sh makes it). Then the official
# `openai` npm package (root package.json) drives it from Node (native-server/tests/openai-node.test.mjs).
# The Prometheus tests need Debian's `prometheus` (prometheus and promtool; scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
VENV="$CACHE/venv"
{ [ -x "$VENV/bin/python" ] && command -v prometheus >/dev/null && command -v promtool >/dev/null; } ||
  scripts/setup.sh
cargo build --locked -p realm-server -p realm-cli
export REALM_SERVER_BIN="$PWD/target/debug/realm-server" REALM_CLI_BIN="$PWD/target/debug/realm"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider native-server/tests "$@"
command -v node >/dev/null || { echo "test-server: node (>= 20) is required" >&2; exit 1; }
[ -d node_modules/openai ] && [ -d node_modules/ws ] || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
node --test native-server/tests/openai-node.test.mjs
