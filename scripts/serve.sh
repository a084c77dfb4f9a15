#!/usr/bin/env bash
# Serve a model with realm-server (native-server/README.md): OpenAI's HTTP API and the
# realm.v1 WebSocket at http://127.0.0.1:8080 (the binary's defaults). Runs scripts/setup.sh
# first if the default model is not in the cache, builds the release binary, and passes every
# argument through, llama-server's spellings included:
#
#   scripts/serve.sh                                   the default model (SmolLM2-135M Q4_1)
#   scripts/serve.sh --port 9000 --api-key KEY -c 8192 -np 8
#   scripts/serve.sh -m model.gguf --alias name --config tenants.toml
#
# Serves until SIGTERM or Ctrl-C, then drains (--drain-timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${REALM_CACHE_DIR:-$HOME/.cache/realm}/models/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$MODEL" ] || scripts/setup.sh
cargo build --release --locked -p realm-server
exec target/release/realm-server "$@"
