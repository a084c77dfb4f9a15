#!/usr/bin/env bash
# Build the browser engine: realm-wasm for wasm32 with SIMD128 (release), bound by wasm-bindgen
# (--target web) into npm/realm-web/dist/wasm/ (with relaxed SIMD), dist/wasm-compat/ (without),
# its threads variant into dist/wasm-threads/ and its Memory64 variant into dist/wasm64/, then
# the TypeScript package into dist/.
# Idempotent: the wasm-bindgen CLI is installed only when the one on PATH is not the version
# Cargo.lock pins (the two must match), npm installs only when the lockfile changed.
set -euo pipefail
cd "$(dirname "$0")/.."

WB_VERSION=0.2.130
PKG=npm/realm-web
# A target directory of its own: the simd128 RUSTFLAGS would otherwise invalidate the wasm32
# artifacts of `scripts/test.sh` in the shared one.
TARGET_DIR=target/web

have="$(wasm-bindgen --version 2>/dev/null || true)"
if [ "$have" != "wasm-bindgen $WB_VERSION" ]; then
  echo "build-web: installing wasm-bindgen-cli $WB_VERSION (found: ${have:-none}); this takes minutes" >&2
  # Without --locked: with it, a pinned transitive crate is missing from the registry.
  nice -n 15 cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true

# bind NAME WASM [WASM-OPT FLAGS]: wasm-bindgen (--target web) into $PKG/dist/NAME/, then
# wasm-opt where present.
bind() {
  local out="$PKG/dist/$1"
  rm -rf "$out"
  mkdir -p "$out"
  wasm-bindgen --target web --out-dir "$out" --out-name realm_wasm "$2"
  if command -v wasm-opt >/dev/null 2>&1; then
    wasm-opt -O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-mutable-globals --enable-threads --enable-relaxed-simd "${@:3}" \
      "$out/realm_wasm_bg.wasm" -o "$out/realm_wasm_bg.wasm"
  fi
  echo "build-web: $1 $(du -h "$out/realm_wasm_bg.wasm" | cut -f1)" >&2
}

# The baseline: wasm32 + SIMD128 + relaxed SIMD (its int8 dot product), single-threaded,
# WebGPU through wgpu.
t0=$(date +%s)
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" nice -n 15 cargo build --locked --release \
  --target wasm32-unknown-unknown --target-dir target/web-relaxed -p realm-wasm
bind wasm target/web-relaxed/wasm32-unknown-unknown/release/realm_wasm.wasm
echo "build-web: baseline in $(( $(date +%s) - t0 ))s" >&2

# The same without relaxed SIMD, for browsers that lack it (the loader checks).
t0=$(date +%s)
RUSTFLAGS="-C target-feature=+simd128" nice -n 15 cargo build --locked --release \
  --target wasm32-unknown-unknown --target-dir "$TARGET_DIR" -p realm-wasm
bind wasm-compat "$TARGET_DIR/wasm32-unknown-unknown/release/realm_wasm.wasm"
echo "build-web: compat (no relaxed SIMD) in $(( $(date +%s) - t0 ))s" >&2

# The threads variant (cross-origin isolated pages): atomics and a shared memory need std
# rebuilt with them, so nightly and rust-src (scripts/setup.sh installs both). Its CPU pool
# runs on Web Workers over the shared memory; 4 GiB is wasm32's ceiling.
t0=$(date +%s)
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd,+atomics,+bulk-memory,+mutable-globals \
  -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296 \
  -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
  -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base" \
  nice -n 15 cargo +nightly build --locked --release -Zbuild-std=std,panic_abort \
  --target wasm32-unknown-unknown --target-dir target/web-threads -p realm-wasm
bind wasm-threads target/web-threads/wasm32-unknown-unknown/release/realm_wasm.wasm
echo "build-web: threads variant in $(( $(date +%s) - t0 ))s" >&2

# The Memory64 variant (wasm64; models over ~3.5 GiB on the CPU): std rebuilt for wasm64 on
# nightly; no WebGPU (wgpu has no wasm64 backend), so the `webgpu` feature is off.
t0=$(date +%s)
RUSTFLAGS="-C target-feature=+simd128" \
  nice -n 15 cargo +nightly build --locked --release -Zbuild-std=std,panic_abort \
  --target wasm64-unknown-unknown --target-dir target/web64 -p realm-wasm --no-default-features
bind wasm64 target/web64/wasm64-unknown-unknown/release/realm_wasm.wasm --enable-memory64
echo "build-web: Memory64 variant in $(( $(date +%s) - t0 ))s" >&2

# The TypeScript package (tsc from its pinned devDependency).
scripts/build-web-ts.sh
echo "build-web: $PKG/dist ready" >&2
