#!/usr/bin/env bash
# Server load benchmark: realm-server against llama.cpp's llama-server (built by
# scripts/build-llama-bench.sh from the same llama-cpp-python==0.3.36 sdist as llama-bench), in
# the same run on the same machine. A benchmark program, not a test: scripts/test.sh does not
# run it. For each model both servers are started side by side on loopback ports,
#   realm-server -m MODEL -c 8192 -t THREADS                    (its default --max-running 16)
#   llama-server -m MODEL -np 8 -c 8192 -t THREADS --host 127.0.0.1
# and scripts/bench-server.py (standard library only) drives their POST /v1/completions,
# streamed, with token-id prompts: fixed IN=128/OUT=128 at concurrency 1, 4, 8, 16 (closed loop),
# then a shared 512-token prefix + short questions at concurrency 1 and 4 (OUT=32), alternating
# the two servers at each step so that only one works at a time and both see the same machine,
# ROUNDS times. `realm bench -p 0 -n 128` (single stream, no server) is measured first, before
# the servers start, and printed next to realm-server's concurrency-1 numbers. Both servers are
# stopped by PID on exit. Prints markdown tables; every number goes to a JSON file per model.
# Usage: scripts/bench-server.sh   (ROUNDS=1, THREADS=2, MODELS_LIST="a.gguf b.gguf" (default
#   SmolLM2-135M-Instruct.Q4_1.gguf), BENCH_JSON=path (one model; else OUT_DIR/<model>.json),
#   OUT_DIR (default a fresh temporary directory: logs and JSON), BENCH_ARGS="--requests 8
#   --conc 1,8" passed on to bench-server.py, BUILD_NICE=10 the builds' niceness)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-1}"
THREADS="${THREADS:-2}"
MODELS="${REALM_CACHE_DIR:-$HOME/.cache/realm}/models"
MODELS_LIST="${MODELS_LIST:-SmolLM2-135M-Instruct.Q4_1.gguf}"
OUT="${OUT_DIR:-$(mktemp -d)}"
mkdir -p "$OUT"
NICE=(nice -n "${BUILD_NICE:-10}")

for model in $MODELS_LIST; do
  [ -f "$MODELS/$model" ] || { scripts/fetch-models.sh >&2; break; }
done
LLAMA=$("${NICE[@]}" scripts/build-llama-bench.sh llama-server)
"${NICE[@]}" cargo build --release --locked -p realm-server -p realm-cli >&2
REALM_SERVER=target/release/realm-server
REALM=target/release/realm

PIDS=()
stop() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap stop EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits for GET /health 200 from a server whose process is $2; the log is $3.
wait_health() {
  for _ in $(seq 1 600); do
    if curl -fs -o /dev/null "http://127.0.0.1:$1/health"; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then echo "server on port $1 exited; its log, $3:" >&2; tail -n 20 "$3" >&2; exit 1; fi
    sleep 0.2
  done
  echo "no /health 200 on port $1 after 120 s; its log: $3" >&2
  exit 1
}

set -- $MODELS_LIST
n_models=$#
for model in "$@"; do
  path="$MODELS/$model"
  stem="${model%.gguf}"
  if [ -n "${BENCH_JSON:-}" ] && [ "$n_models" = 1 ]; then json="$BENCH_JSON"
  elif [ -n "${BENCH_JSON:-}" ]; then json="${BENCH_JSON%.json}-$stem.json"
  else json="$OUT/$stem.json"; fi

  # Single stream without a server first, while nothing else of this script runs.
  tg=$("$REALM" bench "$path" -p 0 -n 128 -r 3 --threads "$THREADS" --json |
    python3 -c '
import json, sys
print(round([json.loads(l) for l in sys.stdin if l.startswith("{")][-1]["tg_tok_s"], 2))')
  echo "realm bench $model -p 0 -n 128 -r 3 --threads $THREADS: tg $tg tok/s" >&2

  p1=$(free_port)
  p2=$(free_port)
  while [ "$p2" = "$p1" ]; do p2=$(free_port); done
  RCMD=("$REALM_SERVER" -m "$path" -c 8192 -t "$THREADS" --port "$p1")
  LCMD=("$LLAMA" -m "$path" -np 8 -c 8192 -t "$THREADS" --port "$p2" --host 127.0.0.1)
  "${RCMD[@]}" >"$OUT/realm-server-$stem.log" 2>&1 &
  PIDS+=($!)
  rpid=$!
  "${LCMD[@]}" >"$OUT/llama-server-$stem.log" 2>&1 &
  PIDS+=($!)
  lpid=$!
  wait_health "$p1" "$rpid" "$OUT/realm-server-$stem.log"
  wait_health "$p2" "$lpid" "$OUT/llama-server-$stem.log"

  echo "## $model (threads $THREADS, rounds $ROUNDS)"
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of words
  python3 scripts/bench-server.py --rounds "$ROUNDS" --model "$model" --json "$json" \
    --server "realm=http://127.0.0.1:$p1" --server "llama.cpp=http://127.0.0.1:$p2" \
    --cmd "realm=${RCMD[*]}" --cmd "llama.cpp=${LCMD[*]}" --single-stream-tgs "$tg" ${BENCH_ARGS:-}
  stop
done
echo "logs and JSON: $OUT" >&2
