#!/usr/bin/env bash
# The main job: set up, build the browser engine and realm-web (scripts/build-web.sh), and serve
# the chat demo (demo/) with the model cache on localhost, with the COOP/COEP headers that make
# the page cross-origin isolated. Prints the URL and serves until Ctrl-C.
#
#   scripts/run.sh                 REALM_PORT (default 8080) and REALM_HOST (default 127.0.0.1)
#
# The `realm` CLI's own demo is in README.md ("The realm CLI").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
command -v node >/dev/null || { echo "run: node (>= 20) is required to serve the demo" >&2; exit 1; }
scripts/build-web.sh

PORT="${REALM_PORT:-8080}"
HOST="${REALM_HOST:-127.0.0.1}"
MODEL="${REALM_CACHE_DIR:-$HOME/.cache/realm}/models/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$MODEL" ] || { echo "run: $MODEL is missing (scripts/fetch-models.sh)" >&2; exit 1; }
echo
echo "Realm chat demo: http://$HOST:$PORT/demo/   (the default model is served from /models/; Ctrl-C stops)"
echo
exec node tests/e2e/server.mjs "$PORT" "$HOST"
