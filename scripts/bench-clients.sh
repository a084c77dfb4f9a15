#!/usr/bin/env bash
# Client-overhead benchmark (issue 14): realm_client (Python) against raw SSE and WebSocket
# readers on one release realm-server. A benchmark program, not a test: scripts/test.sh does
# not run it. Builds target/release/realm-server if it is missing, then runs
# scripts/bench-clients.py (which starts the server on a free loopback port and stops it by
# PID) with the venv that has httpx2 and websockets.
# Usage: scripts/bench-clients.sh [bench-clients.py args: --rounds 5 --requests 20 --out 64 --json PATH]
#   PYTHON (default ~/.cache/realm/venv/bin/python), BUILD_NICE=10 the build's niceness
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$HOME/.cache/realm/venv/bin/python}"
if [ ! -x target/release/realm-server ]; then
  nice -n "${BUILD_NICE:-10}" cargo build --release --locked -p realm-server >&2
fi
exec "$PYTHON" scripts/bench-clients.py "$@"
