#!/usr/bin/env bash
# The main job: set up, build `realm` in release mode, and show it on the default model
# (model info, then the default prompt's tokens). Extra arguments replace the prompt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p realm-cli
MODEL="${REALM_MODEL:-${REALM_CACHE_DIR:-$HOME/.cache/realm}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
PROMPT="${*:-Hello from Realm! Tokenize me, exactly like llama.cpp.}"
target/release/realm info "$MODEL"
echo
target/release/realm tokenize "$MODEL" --text "$PROMPT"
