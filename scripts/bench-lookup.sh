#!/usr/bin/env bash
# Prompt-lookup speculative decoding benchmark (issue 18): realm-server with and without drafts
# on input-grounded tasks and free chat, single stream and 8 concurrent, both models, beside
# llama.cpp's llama-lookup (built into the cache by scripts/build-llama-bench.sh, ~20 minutes
# the first time; REALM_NO_LLAMA=1 skips it). scripts/bench-lookup.py says how. Not a test.
# Usage: scripts/bench-lookup.sh [--rounds 3] [--models smollm2,gemma3] [--modes off,on,always] [--json PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
nice -n "${BUILD_NICE:-10}" cargo build --release --locked -p realm-server >&2
[ -n "${REALM_NO_LLAMA:-}" ] || nice -n "${BUILD_NICE:-10}" scripts/build-llama-bench.sh llama-lookup >&2
exec python3 scripts/bench-lookup.py "$@"
