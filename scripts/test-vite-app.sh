#!/usr/bin/env bash
# realm-web as an npm user gets it, in a plain Vite app (tests/vite-app): `npm pack` of
# npm/realm-web, a fresh copy of the app in target/vite-app/app, `npm ci` of the tarball and the
# pinned Vite (tests/vite-app/package-lock.json; the npm cache first, so later runs need no
# network), `vite build`; then tests/e2e/vite.spec.ts loads the built app in headless Chromium
# (served by tests/e2e/server.mjs at /vite-app/) and checks its greedy tokens against llama.cpp.
#
#   scripts/test-vite-app.sh [playwright args]   build the app, then run the spec
#   scripts/test-vite-app.sh --build-only        only build it (the spec's beforeAll does this)
#
# The package is built (scripts/build-web.sh) only when it never was. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=npm/realm-web
WORK=target/vite-app
APP="$WORK/app"

build_only=0
if [ "${1:-}" = "--build-only" ]; then
  build_only=1
  shift
fi
command -v node >/dev/null || { echo "test-vite-app: node (>= 20.19, for Vite) is required" >&2; exit 1; }

if [ ! -d "$PKG/dist/wasm" ] || [ ! -f "$PKG/dist/index.js" ]; then
  scripts/build-web.sh
fi

t0=$(date +%s)
rm -rf "$WORK"
mkdir -p "$WORK/pack"
# The tarball as `npm publish` would upload it (the package's `files`), under a fixed name that
# the app's package.json points at.
(cd "$PKG" && npm pack --silent --pack-destination "$OLDPWD/$WORK/pack" >/dev/null)
tarballs=("$WORK"/pack/*.tgz)
[ "${#tarballs[@]}" -eq 1 ] || { echo "test-vite-app: npm pack gave ${#tarballs[@]} tarballs" >&2; exit 1; }
mv "${tarballs[0]}" "$WORK/realm-web.tgz"
rmdir "$WORK/pack"

cp -R tests/vite-app "$APP"
# The lockfile pins Vite's tree; it leaves realm-web's integrity out, as the tarball changes
# with every build of the package.
(cd "$APP" && nice -n 15 npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
# A relative base: the server mounts the app at /vite-app/.
(cd "$APP" && nice -n 15 npx --no-install vite build --base=./ --logLevel warn)
[ -f "$APP/dist/index.html" ] || { echo "test-vite-app: vite build wrote no index.html" >&2; exit 1; }
echo "test-vite-app: packed, installed and built in $(( $(date +%s) - t0 ))s ($APP/dist)" >&2
[ "$build_only" -eq 1 ] && exit 0

# The spec, on its own (scripts/test-web.sh runs it with the rest of the browser tests).
scripts/fetch-models.sh
if [ ! -d node_modules/@playwright/test ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
REALM_VITE_APP_BUILT=1 nice -n 15 npx playwright test tests/e2e/vite.spec.ts --project=chromium-wasm "$@"
