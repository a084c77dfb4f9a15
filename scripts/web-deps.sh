#!/usr/bin/env bash
# What the browser and Node tests of realm-web need, idempotently: Debian's chromium (apt, only
# when missing; Playwright's browser downloads are not used), the npm tools of the root
# package-lock.json (Playwright, ws, openai), and npm/realm-web's TypeScript build (tsc; the
# wasm builds are scripts/build-web.sh's). Used by scripts/test-web.sh and npm/realm-web/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM="${REALM_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "web-deps: installing Debian's chromium (Playwright's browser downloads are not used)" >&2
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium
fi
if ! "$CHROMIUM" --version >/dev/null 2>&1; then
  echo "web-deps: $CHROMIUM does not run; install Debian's chromium or set REALM_CHROMIUM" >&2
  exit 1
fi
command -v node >/dev/null || { echo "web-deps: node (>= 20) is required" >&2; exit 1; }

# The Playwright runner and ws, pinned by the root package-lock.json (no browser download).
if [ ! -d node_modules/@playwright/test ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi

scripts/build-web-ts.sh
