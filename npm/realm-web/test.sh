#!/usr/bin/env bash
# realm-web's remote engine against a real realm-server: the Node tests (test/*.test.mjs:
# clients/SCENARIOS.md S1-S6, bad input from scripted servers, the README's example), one file
# at a time, and, where scripts/test-clients.sh has started the shared server (REALM_TEST_URL),
# the demo's server mode in headless Chromium (tests/e2e/remote.spec.ts). Without
# REALM_TEST_URL the Node tests start their own server (REALM_SERVER_BIN, default
# target/debug/realm-server) and the browser test is left to scripts/test-clients.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/web-deps.sh
node --test --test-concurrency=1 npm/realm-web/test/
if [ -n "${REALM_TEST_URL:-}" ]; then
  REALM_CHROMIUM="${REALM_CHROMIUM:-/usr/bin/chromium}" nice -n 15 npx playwright test --project chromium-remote
else
  echo "realm-web: REALM_TEST_URL is not set: the demo's server mode (tests/e2e/remote.spec.ts) runs in scripts/test-clients.sh" >&2
fi
