#!/usr/bin/env bash
# The browser benchmark: realm-web (wasm, 1 and 2 threads; WebGPU) against @wllama/wllama
# (llama.cpp in wasm) on SmolLM2-135M-Instruct Q4_1 in headless Chromium, ROUNDS rounds
# (default 3), each engine in a fresh page; prints a markdown table of the medians (prompt and
# generation tokens/s, realm/wllama ratios, time to first token from the model cache) with the
# load average before and after. The page is bench/web/ (its query parameters run one
# configuration by hand, at http://127.0.0.1:$PORT/bench/ with `node tests/e2e/server.mjs`).
#
#   scripts/bench-web.sh [ROUNDS]     (REALM_BENCH_PORT, default 8174; REALM_CHROMIUM; BENCH_JSON=out.json for every number)
#
# Builds realm-web only when npm/realm-web/dist/wasm is missing (scripts/build-web.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
PORT="${REALM_BENCH_PORT:-8174}"
CHROMIUM="${REALM_CHROMIUM:-/usr/bin/chromium}"

"$CHROMIUM" --version >/dev/null 2>&1 || { echo "bench-web: no chromium at $CHROMIUM (scripts/test-web.sh installs it)" >&2; exit 1; }
command -v node >/dev/null || { echo "bench-web: node (>= 20) is required" >&2; exit 1; }
scripts/fetch-models.sh >/dev/null
if [ ! -d node_modules/@wllama/wllama ] || [ ! -d node_modules/playwright-core ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
[ -d npm/realm-web/dist/wasm ] || scripts/build-web.sh

node tests/e2e/server.mjs "$PORT" >/dev/null &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/bench/index.html" && break
  sleep 0.2
done

REALM_CHROMIUM="$CHROMIUM" BENCH_CMD="scripts/bench-web.sh $ROUNDS" \
  node scripts/bench-web.mjs "http://127.0.0.1:$PORT/" "$ROUNDS"
