#!/usr/bin/env bash
# The main job: set up, build `realm` in release mode, and show it on the default model: model
# info, the prompt's tokens, then a short greedy continuation on the CPU. Extra arguments replace
# the prompt. (The browser demo takes this place once the browser SDK lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p realm-cli
MODEL="${REALM_MODEL:-${REALM_CACHE_DIR:-$HOME/.cache/realm}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
PROMPT="${*:-The three primary colors are}"
target/release/realm info "$MODEL"
echo
target/release/realm tokenize "$MODEL" --text "$PROMPT"
echo
target/release/realm generate "$MODEL" --prompt "$PROMPT" -n 48
