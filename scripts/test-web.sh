#!/usr/bin/env bash
# The browser tests, from a fresh clone: Debian's chromium (apt, only when missing), the npm
# tools from their lockfiles, the model, the wasm engine and realm-web (scripts/build-web.sh),
# then Playwright in headless Chromium (tests/e2e, playwright.config.ts). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM="${REALM_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "test-web: installing Debian's chromium (Playwright's browser downloads are not used)" >&2
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium
fi
if ! "$CHROMIUM" --version >/dev/null 2>&1; then
  echo "test-web: $CHROMIUM does not run; install Debian's chromium or set REALM_CHROMIUM" >&2
  exit 1
fi
command -v node >/dev/null || { echo "test-web: node (>= 20) is required" >&2; exit 1; }

scripts/fetch-models.sh

# The Playwright runner, pinned by the root package-lock.json (no browser download).
if [ ! -d node_modules/@playwright/test ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi

scripts/build-web.sh

t0=$(date +%s)
REALM_CHROMIUM="$CHROMIUM" nice -n 15 npx playwright test "$@"
echo "test-web: browser tests passed in $(( $(date +%s) - t0 ))s" >&2
