#!/usr/bin/env bash
# realm-web's TypeScript build (npm/realm-web/dist/*.js, tsc from its pinned devDependency);
# the wasm builds beside it are scripts/build-web.sh's. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../npm/realm-web"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
