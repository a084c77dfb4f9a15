#!/usr/bin/env bash
# Stage what the GPU device machine needs (see scripts/device/README.md), HERE, into ignored
# folders at the repository root that the `run` tool's `carry` list names:
#   .dev/bin/  the `realm` release binary (stripped of debug info, gzipped), a tokenizer-only
#              stub of SmolLM2 (synth's --vocab-from), BUILD_INFO, SHA256SUMS (both calls)
#   .dev/m1/   the first half of SmolLM2-135M-Instruct.Q4_1.gguf (+ its sha256) and the wgpu
#              conformance test executable (call 1)
#   .dev/m2/   the second half (+ its sha256) and the wgpu oracle test executable (call 2)
#   .gl/       the Vulkan loader and glvnd debs, fetched as the device README says
# The device machine has no Rust: everything is built here. It refuses (exit 1) when either
# call's carry set plus the working tree that travels would exceed BUNDLE_LIMIT_MIB (60).
# Usage: scripts/device/bundle.sh            (env: REALM_CACHE_DIR, BUNDLE_LIMIT_MIB)
set -euo pipefail
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$ROOT"

LIMIT_MIB=${BUNDLE_LIMIT_MIB:-60}
MODEL=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 # scripts/fetch-models.sh
MODEL_PATH=${REALM_CACHE_DIR:-$HOME/.cache/realm}/models/$MODEL

log() { printf '[bundle] %s\n' "$*" >&2; }
die() { printf '[bundle] ERROR: %s\n' "$*" >&2; exit 1; }

# --- ignore the staged folders (a fresh clone gets them from .gitignore; this checkout from both)
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for p in /.dev/ /.gl/; do
  grep -qxF "$p" "$exclude" 2>/dev/null || echo "$p" >>"$exclude"
done
if ! grep -qxF /.dev/ .gitignore; then
  printf '%s\n' '# GPU device-machine bundle (scripts/device/bundle.sh): staged binaries and model halves' \
    /.dev/ >>.gitignore
fi
for p in .dev .gl; do
  git check-ignore -q "$p/x" || die "$p is not ignored by git: it would travel as part of the tree"
done

# --- build (release; the workspace's release profile keeps line tables, stripped below)
[ -f "$MODEL_PATH" ] || die "$MODEL_PATH is missing: run scripts/fetch-models.sh"
log "checking $MODEL's sha256"
echo "$MODEL_SHA  $MODEL_PATH" | sha256sum -c --status || die "$MODEL_PATH: sha256 is not $MODEL_SHA"

log "cargo build --release -p realm-cli"
nice cargo build --release -p realm-cli
# The test executables' paths come from cargo's JSON messages (diagnostics rendered to stderr).
test_exe() { # package test-target
  local json exe
  json=$(nice cargo test --release --no-run --message-format=json-render-diagnostics -p "$1" --test "$2")
  exe=$(printf '%s\n' "$json" | python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == name:
        print(m["executable"])
' "$2" | tail -n 1)
  [ -n "$exe" ] && [ -x "$exe" ] || die "no test executable for $1 --test $2"
  printf '%s\n' "$exe"
}
log "cargo test --release --no-run (conformance, oracle_wgpu)"
CONF=$(test_exe realm-backend-wgpu conformance)
ORACLE=$(test_exe realm-runtime oracle_wgpu)
REALM=$ROOT/target/release/realm
# The tests find tests/fixtures through a path compiled in (realm_testdata::fixture uses
# CARGO_MANIFEST_DIR): run.sh links this root to the device's copy when it is elsewhere.
grep -aqF "$ROOT/crates/realm-testdata" "$ORACLE" ||
  die "$ORACLE does not hold the fixture path $ROOT/crates/realm-testdata (realm_testdata changed?)"

# --- stage
rm -rf .dev
mkdir -p .dev/bin .dev/m1 .dev/m2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >.dev/bin/SHA256SUMS
# Each test executable travels only with the call that runs it (the limit is tight).
for triple in "realm:$REALM:bin" "conformance:$CONF:m1" "oracle_wgpu:$ORACLE:m2"; do
  IFS=: read -r name src dir <<<"$triple"
  # --strip-debug keeps the symbol table, so a panic's backtrace still names functions.
  objcopy --strip-debug "$src" "$tmp/$name"
  (cd "$tmp" && sha256sum "$name") >>.dev/bin/SHA256SUMS
  gzip -9 -n -c "$tmp/$name" >".dev/$dir/$name.gz"
  glibc=$(objdump -T "$tmp/$name" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
  log "staged .dev/$dir/$name.gz (needs $glibc; $(stat -c %s "$src") bytes -> $(stat -c %s "$tmp/$name") stripped -> $(stat -c %s ".dev/$dir/$name.gz") gzipped)"
done

# A tokenizer-only stub of the model: the header and metadata (everything before the tensor
# data). run.sh extends it back to the full size with `truncate` (a sparse file: the weights
# read as zeros), which `realm synth --vocab-from` accepts; the synthesized models are
# byte-identical to those made from the real file, so the benchmarks need no model halves.
info=$("$REALM" info "$MODEL_PATH" --json)
data_offset=$(printf '%s' "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data_offset"])')
model_bytes=$(stat -c %s "$MODEL_PATH")
head -c "$data_offset" "$MODEL_PATH" >"$tmp/vocab.gguf"
truncate -s "$model_bytes" "$tmp/vocab.gguf"
"$REALM" info "$tmp/vocab.gguf" >/dev/null || die "the tokenizer-only stub does not open"
head -c "$data_offset" "$MODEL_PATH" | gzip -9 -n -c >.dev/bin/smollm2-vocab.gguf.gz

cat >.dev/bin/BUILD_INFO <<EOF
BUILD_ROOT=$ROOT
GIT_REV=$(git rev-parse --short=12 HEAD)
GIT_DIRTY=$(git status --porcelain --untracked-files=no | wc -l)
BUILT_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
RUSTC="$(rustc --version)"
MODEL=$MODEL
MODEL_BYTES=$model_bytes
MODEL_SHA256=$MODEL_SHA
EOF

# The model in two halves, one per call (each call carries at most 64 MiB with the tree).
log "splitting $MODEL in two"
(cd "$tmp" && split -n 2 -d -a 1 --numeric-suffixes=1 "$MODEL_PATH" "$MODEL.part")
mv "$tmp/$MODEL.part1" .dev/m1/
mv "$tmp/$MODEL.part2" .dev/m2/
for d in m1 m2; do echo "$MODEL_SHA  $MODEL" >".dev/$d/$MODEL.sha256"; done
cat .dev/m1/"$MODEL".part1 .dev/m2/"$MODEL".part2 | sha256sum | grep -q "^$MODEL_SHA " ||
  die "the two halves do not reassemble to the model"

# --- the Vulkan loader (and glvnd, which NVIDIA's ICD library needs), as the device README says
if ! ls .gl/libvulkan1_*_amd64.deb >/dev/null 2>&1; then
  log "fetching the loader debs into .gl"
  apt_state="${REALM_CACHE_DIR:-$HOME/.cache/realm}/apt-amd64"
  mkdir -p .gl "$apt_state/partial"
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists='"$apt_state"
  # shellcheck disable=SC2086
  apt-get $o update >/dev/null
  # shellcheck disable=SC2086
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
for p in libvulkan1 libglvnd0 libglx0; do
  ls .gl/"${p}"_*_amd64.deb >/dev/null 2>&1 || die ".gl lacks $p"
done

# --- sizes: what each call moves (the tree that travels + its carry list) against the limit
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
bytes() { du -sb "$@" | awk '{ s += $1 } END { print s + 0 }'; }
tree=$( (git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null || true) | tail -n 1 | cut -f1)
[ -d shared ] && tree=$((tree + $(bytes shared)))
for d in .gl .dev/bin .dev/m1 .dev/m2; do
  printf '[bundle] %-9s %6s MiB  (%s)\n' "$d" "$(mib "$(bytes "$d")")" "$(ls "$d" | tr '\n' ' ')" >&2
done
printf '[bundle] %-9s %6s MiB  (tracked + untracked-not-ignored files)\n' tree "$(mib "$tree")" >&2
status=0
for phase in 1 2; do
  total=$((tree + $(bytes .gl .dev/bin ".dev/m$phase")))
  verdict=ok
  if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then verdict="OVER ${LIMIT_MIB} MiB"; status=1; fi
  log "phase $phase carry [.gl .dev/bin .dev/m$phase] + tree = $(mib "$total") MiB: $verdict"
done
[ "$status" = 0 ] || die "a call would move more than $LIMIT_MIB MiB (the tool's limit is 64 MiB): shrink the tree or the carry"
log "ready: see scripts/device/README.md for the two run calls"
