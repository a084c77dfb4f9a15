#!/usr/bin/env bash
# Structured-output cost benchmark (issue 18): schema-constrained answers against free answers
# of the same length, single stream and 8 concurrent, on a release realm-server, with the mask
# time per token (scripts/bench-structured.py says how). A benchmark program, not a test.
# Usage: scripts/bench-structured.sh [--rounds 5] [--models smollm2,gemma3] [--json PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
nice -n "${BUILD_NICE:-10}" cargo build --release --locked -p realm-server >&2
exec python3 scripts/bench-structured.py "$@"
