#!/usr/bin/env bash
# Client-overhead benchmark (issue 14): realm_client (Python) against raw SSE and WebSocket
# readers on one release realm-server; with --ts first, realm-web's remote engine (Node)
# against a raw `ws` reader instead (scripts/bench-clients-ts.mjs). A benchmark program, not a test: scripts/test.sh does
# not run it. Builds target/release/realm-server if it is missing, then runs
# scripts/bench-clients.py (which starts the server on a free loopback port and stops it by
# PID) with the venv that has httpx2 and websockets.
# Usage: scripts/bench-clients.sh [bench-clients.py args: --rounds 5 --requests 20 --out 64 --json PATH]
#        scripts/bench-clients.sh --ts [the same args, for bench-clients-ts.mjs]
#   PYTHON (default ~/.cache/realm/venv/bin/python), BUILD_NICE=10 the build's niceness
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$HOME/.cache/realm/venv/bin/python}"
if [ ! -x target/release/realm-server ]; then
  nice -n "${BUILD_NICE:-10}" cargo build --release --locked -p realm-server >&2
fi
if [ "${1:-}" = "--ts" ]; then
  shift
  scripts/web-deps.sh >&2 # ws and realm-web's dist
  exec node scripts/bench-clients-ts.mjs "$@"
fi
exec "$PYTHON" scripts/bench-clients.py "$@"
