#!/usr/bin/env bash
# Build one of llama.cpp's tools, the speed references of BENCHMARKS.md, from the PyPI sdist
# llama-cpp-python==0.3.36, which vendors llama.cpp 0c1e570. Nothing of it is committed; it is
# built into the cache directory. Idempotent: prints the binary's path, building only if needed.
# Usage: scripts/build-llama-bench.sh [TARGET]   (llama-bench by default; llama-batched-bench,
# llama-lookup (prompt-lookup decoding, scripts/bench-lookup.sh's reference), or llama-server,
# the OpenAI-compatible server that scripts/bench-server.sh loads; it is built
# without its web UI: LLAMA_BUILD_UI=OFF and LLAMA_USE_PREBUILT_UI=OFF, so nothing is downloaded).
# LLAMA_ISA=avx2 makes a second build, in its own directory, for AVX2 machines only (no AVX-512,
# no AVX-VNNI, whatever this CPU has): the comparator of `REALM_CPU_ISA=avx2` (issue 17).
set -euo pipefail
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
TARGET="${1:-llama-bench}"
case "${LLAMA_ISA:-native}" in
  native) DIR="$CACHE/llama.cpp-0c1e570"; ISA_FLAGS=(-DGGML_NATIVE=ON) ;;
  avx2) DIR="$CACHE/llama.cpp-0c1e570-avx2"
    ISA_FLAGS=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
      -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF
      -DGGML_AVX_VNNI=OFF -DGGML_BMI2=ON) ;;
  *) echo "unknown LLAMA_ISA ${LLAMA_ISA} (native or avx2)" >&2; exit 2 ;;
esac
case "$TARGET" in
  llama-bench|llama-batched-bench|llama-server|llama-lookup) ;;
  *) echo "unknown target $TARGET (llama-bench, llama-batched-bench, llama-server or llama-lookup)" >&2; exit 2 ;;
esac
BIN="$DIR/build/bin/$TARGET"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
CONFIG=(-DCMAKE_BUILD_TYPE=Release "${ISA_FLAGS[@]}"
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
  -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF)
# Another target built already: configure and sources are there, build only this one. A build
# directory configured before llama-server was a target (LLAMA_BUILD_SERVER=OFF) is configured
# again with it; that adds targets and leaves the ones built untouched.
if [ -f "$DIR/build/CMakeCache.txt" ]; then
  if [ "$TARGET" = llama-server ] && ! grep -q '^LLAMA_BUILD_SERVER:BOOL=ON$' "$DIR/build/CMakeCache.txt"; then
    cmake -S "$DIR" -B "$DIR/build" "${CONFIG[@]}" >&2
  fi
  cmake --build "$DIR/build" --target "$TARGET" -j "$(nproc)" >&2
  echo "$BIN"
  exit 0
fi

if ! command -v cmake >/dev/null 2>&1; then
  python3 -m pip install --quiet cmake >&2   # a binary wheel with the cmake executable
fi
mkdir -p "$CACHE/sdist"
SDIST="$CACHE/sdist/llama_cpp_python-0.3.36.tar.gz"
if [ ! -f "$SDIST" ]; then
  # Fetch the sdist itself from the package index (pip download would try to build it).
  link=$(curl -fsSL https://pypi.org/simple/llama-cpp-python/ | grep -o 'href="[^"]*llama_cpp_python-0.3.36.tar.gz#sha256=[0-9a-f]*"' | head -n 1)
  url=${link#href=\"}; url=${url%\"}
  sha=${url##*#sha256=}; url=${url%%#*}
  curl -fsSL -o "$SDIST.tmp" "$url"
  echo "$sha  $SDIST.tmp" | sha256sum -c --status || { echo "sha256 mismatch for the sdist" >&2; exit 1; }
  mv "$SDIST.tmp" "$SDIST"
fi
rm -rf "$DIR.tmp" && mkdir -p "$DIR.tmp"
# (Each build directory holds its own copy of the sources.)
tar -xzf "$SDIST" -C "$DIR.tmp" --strip-components=1
rm -rf "$DIR" && mv "$DIR.tmp/vendor/llama.cpp" "$DIR" && rm -rf "$DIR.tmp"
cmake -S "$DIR" -B "$DIR/build" "${CONFIG[@]}" >&2
cmake --build "$DIR/build" --target "$TARGET" -j "$(nproc)" >&2
echo "$BIN"
