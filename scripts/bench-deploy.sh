#!/usr/bin/env bash
# Measures the container image (BENCHMARKS.md, "Deployment (issue 15)"): its size, the build's
# time, and cold start — from `podman run -d` to /health 200 and to the first streamed token —
# as the median of RUNS runs (default 7), with the load average and the CPU model.
#
#   scripts/bench-deploy.sh [RUNS]
#   REALM_BENCH_FRESH=1 scripts/bench-deploy.sh   also a build from nothing: a new base by
#                     debootstrap, the builder, and the Rust build with an empty cargo registry and
#                     target directory (a temporary REALM_CACHE_DIR; the models are read from the
#                     usual cache). Takes minutes.
# A benchmark program, not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-7}"
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
MODELS="$CACHE/models"
SMOL=SmolLM2-135M-Instruct.Q4_1.gguf
# shellcheck source=scripts/podman-env.sh
. scripts/podman-env.sh

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(podman --version); commit $(git rev-parse --short HEAD)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${REALM_BENCH_FRESH:-0}" = 1 ]; then
  fresh=$(mktemp -d "${TMPDIR:-/tmp}/realm-bench-cache.XXXXXX")
  trap 'rm -rf "$fresh"' EXIT
  t0=$SECONDS
  REALM_CACHE_DIR="$fresh" REALM_REBUILD_BASE=1 CONTAINERS_CONF="$CONTAINERS_CONF" scripts/build-image.sh cpu 2>&1 \
    | grep -E '^\[build-image\]|Finished'
  echo "fresh build (debootstrap + builder + cold cargo build + runtime image): $((SECONDS - t0)) s"
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

t0=$SECONDS
scripts/build-image.sh cpu 2>&1 | grep -E '^\[build-image\]'
echo "cached rebuild: $((SECONDS - t0)) s"
for t in cpu vulkan; do
  if podman image exists "localhost/realm-server:$t"; then
    echo "image localhost/realm-server:$t: $(podman image inspect --format '{{.Size}}' "localhost/realm-server:$t") bytes"
  fi
done
echo "cold start, $RUNS runs (model $SMOL mounted read-only from the page cache):"
python3 deploy/tests/container_check.py coldstart localhost/realm-server:cpu "$MODELS" "$SMOL" "$RUNS"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
