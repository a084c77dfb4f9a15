#!/usr/bin/env bash
# The clients' tests against the real realm-server on the real model (clients/SCENARIOS.md):
# the Python client (clients/python) under pytest, from its source tree (no install step), and
# the Go client (clients/go: go vet + go test, offline, Debian's Go and gorilla/websocket), and
# the Rust client (crates/realm-client: its server tests are #[ignore]d in `cargo test
# --workspace`, which runs before the server binary exists, and run here), and the Java client
# (clients/java: javac with Debian's gson and JUnit 5), and the TypeScript client (realm-web's
# remote engine: npm/realm-web/test.sh, its Node tests and the demo's server mode in Chromium).
#
# One realm-server (the debug build, CPU, SmolLM2 from the cache, -t 2) serves every client in
# turn: it is started here on a free loopback port with a tenants file of fixed test keys (a
# `main` tenant; a `limited` one with requests_per_minute = 2 and max_tokens = 64) and a metrics
# key, and the harnesses find it through
#   REALM_TEST_URL, REALM_TEST_KEY (main), REALM_TEST_LIMITED_KEY, REALM_TEST_METRICS_KEY;
# REALM_SERVER_BIN and REALM_MODEL are for S6, which starts (and SIGKILLs) a server of its own.
# Without REALM_TEST_URL each harness starts its own server, as it does when run alone. The
# shared server is stopped by its PID with SIGTERM when this script exits, and must exit 0 (a
# clean drain); its log is printed when anything failed.
# The packages come from the venv scripts/setup.sh makes.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
VENV="$CACHE/venv"
MODEL="${REALM_MODEL:-$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
{ [ -x "$VENV/bin/python" ] && command -v go >/dev/null && command -v javac >/dev/null; } || scripts/setup.sh
[ -f "$MODEL" ] || scripts/fetch-models.sh
cargo build --locked -p realm-server
export REALM_SERVER_BIN="$PWD/target/debug/realm-server" REALM_MODEL="$MODEL"

# The same keys as the harnesses' own defaults, so either mode sees one tenant layout.
export REALM_TEST_KEY="client-test-key-0123456789"
export REALM_TEST_LIMITED_KEY="client-limited-key-abcdef"
export REALM_TEST_METRICS_KEY="client-metrics-key"
TMP=$(mktemp -d -t realm-test-clients.XXXXXX)
LOG="$TMP/realm-server.log"
SERVER_PID=""

# On exit (success, failure or signal): SIGTERM to the server's PID, at most 30 s for its
# drain, and its exit status must be 0.
stop_server() {
  local rc=$? code=0
  trap - EXIT
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "test-clients: realm-server (pid $SERVER_PID) still running 30 s after SIGTERM; SIGKILL" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || code=$?
    if [ "$code" -ne 0 ]; then
      echo "test-clients: realm-server (pid $SERVER_PID) exited with $code; after SIGTERM it should drain and exit 0" >&2
      rc=1
    else
      echo "test-clients: realm-server (pid $SERVER_PID) drained and exited 0"
    fi
    if [ "$rc" -ne 0 ]; then
      echo "---- realm-server log ($LOG), last 200 lines ----" >&2
      tail -n 200 "$LOG" >&2 || true
      echo "---- end of realm-server log ----" >&2
    fi
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
cat >"$TMP/tenants.toml" <<EOF
[[tenant]]
name = "main"
key_sha256 = ["$(sha "$REALM_TEST_KEY")"]

[[tenant]]
name = "limited"
key_sha256 = ["$(sha "$REALM_TEST_LIMITED_KEY")"]
requests_per_minute = 2
max_tokens = 64
EOF

PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export REALM_TEST_URL="http://127.0.0.1:$PORT"
"$REALM_SERVER_BIN" -m "$MODEL" --host 127.0.0.1 --port "$PORT" -t 2 --config "$TMP/tenants.toml" \
  --metrics-key "$REALM_TEST_METRICS_KEY" --max-running 8 -c 4096 \
  --cors-origin "http://127.0.0.1:${REALM_E2E_PORT:-8173}" >"$LOG" 2>&1 &
SERVER_PID=$!
ready=""
for _ in $(seq 1 600); do # 120 s
  if curl -fs -o /dev/null --max-time 2 "$REALM_TEST_URL/health"; then ready=1; break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "test-clients: realm-server exited before /health answered" >&2; exit 1; }
  sleep 0.2
done
[ -n "$ready" ] || { echo "test-clients: no /health 200 from $REALM_TEST_URL after 120 s" >&2; exit 1; }
echo "test-clients: one realm-server for every client: $REALM_TEST_URL (pid $SERVER_PID,"
echo "  $REALM_SERVER_BIN, -m $MODEL -t 2 --max-running 8 -c 4096, log $LOG)"

run() {
  local t0=$SECONDS
  echo "test-clients: $1"
  shift
  "$@"
  echo "test-clients: $((SECONDS - t0)) s"
}
run "the Python client" "$VENV/bin/python" -m pytest -q -p no:cacheprovider clients/python/tests
run "the Go client" clients/go/test.sh
run "the Rust client" cargo test --locked -p realm-client -- --ignored
run "the Java client" clients/java/test.sh
# The demo page (Playwright's static server on REALM_E2E_PORT) is allowed as a CORS origin
# above: the remote engine in a browser asks the HTTP side why a handshake was refused.
run "the TypeScript client (realm-web's remote engine in Node, and the demo's server mode in Chromium)" \
  npm/realm-web/test.sh
