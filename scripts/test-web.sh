#!/usr/bin/env bash
# The browser tests, from a fresh clone: Debian's chromium (apt, only when missing) and the npm
# tools from their lockfiles (scripts/web-deps.sh), the model, the wasm engine and realm-web
# (scripts/build-web.sh), then Playwright in headless Chromium (tests/e2e,
# playwright.config.ts). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM="${REALM_CHROMIUM:-/usr/bin/chromium}"
scripts/web-deps.sh
scripts/fetch-models.sh
scripts/build-web.sh

t0=$(date +%s)
REALM_CHROMIUM="$CHROMIUM" nice -n 15 npx playwright test "$@"
echo "test-web: browser tests passed in $(( $(date +%s) - t0 ))s" >&2
