#!/usr/bin/env bash
# Run THERE, on the GPU device machine (bash, root, no Rust, no network), from the repository
# root of the copy the `run` tool made, after scripts/device/bundle.sh staged .dev/ and .gl/ here.
# scripts/device/README.md gives the exact tool calls.
#
#   bash scripts/device/run.sh 1   carry .gl .dev/bin .dev/m1: adapters, wgpu conformance suite
#   bash scripts/device/run.sh 2   carry .gl .dev/bin .dev/m2, on the SAME warm machine (needs
#                                  .dev/m1 from call 1): SmolLM2 oracle test on wgpu, then
#                                  synth + bench of smollm2-135m q4_1 and llama-7b q4_0, with
#                                  the per-kernel profile and its share of the card's bandwidth
#
# Every step runs under `timeout` and within the phase's budget, a failing step does not stop
# the next, and the end prints one status line per step. Output goes to $OUT/phase<N>.log (and
# $OUT/phase2-summary.txt). Exit: 0 all steps ok, 1 a step failed or timed out, 2 usage,
# 3 phase 2 found no .dev/m1 (the machine was given back between the calls: the oracle test
# did not run; the benchmarks still did), 4 the bundle is missing (wrong carry list).
#
# Environment knobs (all optional):
#   DEVICE_QUICK=1       local dry run on lavapipe: tiny -p/-n/-r, no llama-7b, 6x step caps
#   DEVICE_BUDGET_S=N    seconds this phase may spend in its steps (default 240 / 450)
#   DEVICE_SKIP_BENCH=1  phase 2: only the model and the oracle test (a retry after exit 3)
#   DEVICE_SKIP_7B=1     phase 2: no llama-7b synth/bench
#   DEVICE_PEAK_GBS=N    peak memory bandwidth in GB/s for the summary (default: from the name)
#   DEVICE_UNPACK=0|1    force skipping / doing the .gl unpack into / (default: only on a
#                        machine with an NVIDIA driver, i.e. the device machine)
set -uo pipefail

PHASE=${1:-}
case "$PHASE" in
  1 | 2) ;;
  *)
    echo "usage: bash scripts/device/run.sh 1|2   (see scripts/device/README.md)" >&2
    exit 2
    ;;
esac
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
OUT=${OUT:-/tmp/realm-dev-out}
mkdir -p "$OUT"
LOG=$OUT/phase$PHASE.log
WORK=/tmp/realm-dev
BIN=$WORK/bin
STEPDIR=$WORK/steps$PHASE
MODEL=SmolLM2-135M-Instruct.Q4_1.gguf
QUICK=${DEVICE_QUICK:-0}

if [ "$QUICK" = 1 ]; then
  CAP_SCALE=6 DEFAULT_BUDGET=3600
  BENCH_ARGS=(-p 16 -n 4 -r 1) PROFILE_PP=(-p 16 -n 0 -r 1) PROFILE_TG=(-p 0 -n 4 -r 1)
  GREEDY_ARGS=(-p 0 -n 4 -r 1 --greedy) COOP_ARGS=(-p 16 -n 0 -r 1)
else
  CAP_SCALE=1
  DEFAULT_BUDGET=$([ "$PHASE" = 1 ] && echo 240 || echo 450)
  BENCH_ARGS=(-p 512 -n 128 -r 3) PROFILE_PP=(-p 512 -n 0 -r 1) PROFILE_TG=(-p 0 -n 128 -r 1)
  GREEDY_ARGS=(-p 0 -n 128 -r 3 --greedy) COOP_ARGS=(-p 512 -n 0 -r 3)
fi
BUDGET=${DEVICE_BUDGET_S:-$DEFAULT_BUDGET}
RESERVE=15 # seconds kept for the summary

STEPS=()
FAILED=0

banner() { printf '\n################################################################\n'; printf '### %s\n' "$@"; printf '################################################################\n'; }
secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
record() { STEPS+=("$(printf '%-18s %-7s rc=%-4s %7ss  %s' "$1" "$2" "$3" "$4" "${5:-}")"); }
skip() { # name reason
  record "$1" SKIP - 0 "$2"
  printf '\n=== [%s] SKIPPED: %s\n' "$1" "$2"
}

# step NAME CAP_SECONDS CMD...: runs CMD under timeout (the cap, scaled, and never past the
# phase's deadline), tees its output to the log and $STEPDIR/NAME.log, records its status.
step() {
  local name=$1 cap=$(($2 * CAP_SCALE))
  shift 2
  local left=$((DEADLINE - SECONDS - RESERVE))
  local t=$((cap < left ? cap : left))
  if [ "$t" -lt 5 ]; then
    skip "$name" "phase budget (${BUDGET}s) spent"
    return 99
  fi
  printf '\n=== [%s] %s (timeout %ss): %s\n' "$name" "$(date -u +%T)" "$t" "$*"
  local t0 rc dt st
  t0=$(date +%s.%N)
  timeout -k 10 "$t" "$@" 2>&1 | tee "$STEPDIR/$name.log"
  rc=${PIPESTATUS[0]}
  dt=$(secs_since "$t0")
  case $rc in
    0) st=OK ;;
    124 | 137) st=TIMEOUT ;;
    *) st=FAIL ;;
  esac
  [ "$rc" = 0 ] || FAILED=1
  printf '=== [%s] %s rc=%s %ss\n' "$name" "$st" "$rc" "$dt"
  record "$name" "$st" "$rc" "$dt" "$([ "$st" = TIMEOUT ] && echo "killed after ${t}s")"
  return "$rc"
}

# --- the machine: detect the device machine, bring the Vulkan loader, find NVIDIA's ICD -------
setup_machine() {
  banner "realm device run: phase $PHASE $([ "$QUICK" = 1 ] && echo '(DEVICE_QUICK=1 dry run)')" \
    "$(date -u) on $(hostname) in $ROOT, budget ${BUDGET}s, OUT=$OUT"
  uname -a
  echo "cpus: $(nproc)  $(free -g | awk '/^Mem:/ { print "memory: " $2 " GiB, " $7 " GiB available" }')"
  df -h "$ROOT" /tmp 2>/dev/null | sed 's/^/  /'
  for d in /usr/local/nvidia/bin /usr/local/cuda/bin; do
    [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH=$PATH:$d ;; esac
  done
  export PATH
  IS_DEVICE=0
  if command -v nvidia-smi >/dev/null 2>&1 || [ -e /dev/nvidia0 ] || [ -d /usr/local/nvidia ]; then
    IS_DEVICE=1
  fi
  local unpack=${DEVICE_UNPACK:-$IS_DEVICE}
  echo "device machine (NVIDIA driver seen): $([ "$IS_DEVICE" = 1 ] && echo yes || echo no)"
  if [ "$unpack" != 1 ]; then
    echo "Vulkan loader: NOT unpacking .gl/*.deb into / (not the device machine; DEVICE_UNPACK=1 forces it)"
  elif ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
    echo "Vulkan loader: already installed, .gl not unpacked"
  elif [ "$(id -u)" != 0 ]; then
    echo "Vulkan loader: MISSING and not root: cannot unpack .gl (wgpu will find no adapter)"
  elif ! ls .gl/*.deb >/dev/null 2>&1; then
    echo "Vulkan loader: MISSING and .gl holds no debs: name .gl in the call's carry list"
  else
    echo "Vulkan loader: unpacking $(cd .gl && echo *.deb) into /"
    for f in .gl/*.deb; do dpkg -x "$f" / || echo "dpkg -x $f failed (rc $?)"; done
    ldconfig
  fi
  ldconfig -p 2>/dev/null | grep -E 'libvulkan|libGLX_nvidia|libGLdispatch' | sed 's/^/  /'
  if [ "$IS_DEVICE" = 1 ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
    local icd
    for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
      /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.x86_64.json \
      /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
      if [ -f "$icd" ]; then
        export VK_DRIVER_FILES=$icd
        break
      fi
    done
  fi
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-<unset: the default search of the loader>}"
  [ -n "${VK_DRIVER_FILES:-}" ] && [ -f "$VK_DRIVER_FILES" ] && sed 's/^/  /' "$VK_DRIVER_FILES"
  if [ -z "${XDG_RUNTIME_DIR:-}" ]; then # else Mesa's loader prints an alarming "error:" line
    XDG_RUNTIME_DIR=/tmp/realm-xdg-$(id -u)
    export XDG_RUNTIME_DIR
    mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
  fi
  export RUST_BACKTRACE=1
  GPU_NAME=""
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "--- nvidia-smi"
    timeout 20 nvidia-smi --format=csv --query-gpu=name,pci.bus_id,driver_version,memory.total,memory.used,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,pstate,power.draw,power.limit,temperature.gpu,utilization.gpu ||
      timeout 20 nvidia-smi
    GPU_NAME=$(timeout 20 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
  else
    echo "--- nvidia-smi: not found"
  fi
}

# --- the bundle: unpack the binaries, make the compiled-in fixture path resolve ---------------
setup_bundle() {
  echo "--- bundle"
  if [ ! -f .dev/bin/BUILD_INFO ] || [ ! -f .dev/bin/realm.gz ]; then
    banner "NO BUNDLE: .dev/bin is missing. Run scripts/device/bundle.sh here first and name" \
      ".dev/bin in the call's carry list (scripts/device/README.md)."
    return 4
  fi
  sed 's/^/  /' .dev/bin/BUILD_INFO
  # shellcheck disable=SC1091
  . .dev/bin/BUILD_INFO
  rm -rf "$BIN" "$STEPDIR"
  mkdir -p "$BIN" "$STEPDIR"
  # realm travels in .dev/bin, each test executable with the call that runs it.
  local n gz
  for n in realm:bin conformance:m1 oracle_wgpu:m2; do
    gz=.dev/${n#*:}/${n%:*}.gz
    [ -f "$gz" ] || continue
    gunzip -c "$gz" >"$BIN/${n%:*}" && chmod +x "$BIN/${n%:*}" || return 4
  done
  (cd "$BIN" && sha256sum --quiet --ignore-missing -c "$ROOT/.dev/bin/SHA256SUMS") || return 4
  echo "  unpacked into $BIN (sha256 ok): $(cd "$BIN" && echo *)"
  PATH=$BIN:$PATH
  # realm_testdata::fixture() reads $BUILD_ROOT/tests/fixtures (a path compiled into the tests).
  if [ -d "$BUILD_ROOT/tests/fixtures" ]; then
    echo "  fixtures: $BUILD_ROOT/tests/fixtures"
  elif [ -L "$BUILD_ROOT" ] || [ ! -e "$BUILD_ROOT" ]; then
    mkdir -p "$(dirname "$BUILD_ROOT")" && ln -sfn "$ROOT" "$BUILD_ROOT" &&
      echo "  fixtures: linked $BUILD_ROOT -> $ROOT (the path compiled into the tests)"
  else
    echo "  fixtures: WARNING: $BUILD_ROOT exists but has no tests/fixtures: the oracle test will fail"
  fi
}

# --- the adapter: wgpu must see the NVIDIA GPU (else the GPU steps are skipped, not run on a CPU)
check_adapter() {
  step info-devices 60 realm info --devices
  GPU_OK=1
  if ! grep -q 'adapter(s)' "$STEPDIR/info-devices.log"; then GPU_OK=0; fi
  if [ "$IS_DEVICE" = 1 ] && ! grep -q '^\[.*NVIDIA' "$STEPDIR/info-devices.log"; then GPU_OK=0; fi
  if [ "$GPU_OK" = 0 ] && [ "$IS_DEVICE" = 1 ]; then
    echo "no NVIDIA adapter: again with the driver's libraries on LD_LIBRARY_PATH and the loader's log"
    export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/nvidia/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    step info-devices-2 60 env VK_LOADER_DEBUG=error,warn,driver realm info --devices
    if grep -q '^\[.*NVIDIA' "$STEPDIR/info-devices-2.log"; then
      GPU_OK=1
      echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH made the NVIDIA adapter appear: kept for the steps below"
    fi
  fi
  [ "$GPU_OK" = 1 ] || banner "NO USABLE GPU ADAPTER: the wgpu steps are skipped (see info-devices above)"
}

phase1() {
  # Keep the model's first half outside the repository too, in case the copy of the tree that
  # call 2 brings removes the ignored .dev/m1 (call 2 looks in both places).
  mkdir -p "$WORK/stash" && cp ".dev/m1/$MODEL.part1" "$WORK/stash/" 2>/dev/null &&
    echo "stashed .dev/m1/$MODEL.part1 in $WORK/stash for call 2"
  check_adapter
  if [ "$GPU_OK" = 1 ]; then
    # One thread, output live: each test's header names its adapter and tier; a hang still logs.
    step conformance 240 conformance --test-threads=1 --nocapture
  else
    skip conformance "no usable GPU adapter"
  fi
}

# The speed (llama-bench's way), then the per-op GPU time of prompt processing and of
# generation apart (the profile covers the warm-up run and the repetition).
bench_all() { # label gguf
  local label=$1 f=$2
  realm info "$f" --json >"$WORK/models/$label.json" 2>/dev/null
  step "bench-$label" 180 realm bench "$f" --backend wgpu "${BENCH_ARGS[@]}"
  # The serving path: greedy tokens stay on the GPU and each step is recorded while the
  # previous one runs (llama-bench's tg above reads every logit back).
  step "bench-$label-greedy" 120 realm bench "$f" --backend wgpu "${GREEDY_ARGS[@]}"
  # Prefill with the experimental cooperative-matrix (tensor core) matmul: see phase 1's
  # conformance test cooperative_matrices_where_the_adapter_has_them for whether it is right.
  step "bench-$label-coop" 120 env REALM_WGPU_COOP=1 realm bench "$f" --backend wgpu "${COOP_ARGS[@]}"
  step "profile-$label-pp" 120 env REALM_PROFILE=1 realm bench "$f" --backend wgpu "${PROFILE_PP[@]}"
  step "profile-$label-tg" 120 env REALM_PROFILE=1 realm bench "$f" --backend wgpu "${PROFILE_TG[@]}"
  # The serving engine (several sequences per step: batched matvec, paged attention), on the
  # small model only (the device time is short).
  if [ "$label" = smollm2 ]; then
    step "batched-$label" 90 realm batched-bench "$f" --backend wgpu -npp 128 -ntg 128 -npl 1,4,8,16
  fi
}

synth_bench() { # label synth-cap out synth-args...
  local label=$1 cap=$2 out=$3
  shift 3
  if step "synth-$label" "$cap" realm synth "$@" --out "$out"; then
    bench_all "$label" "$out"
  else
    skip "bench-$label" "no model (synth-$label)"
    skip "profiles-$label" "no model (synth-$label)"
  fi
}

phase2() {
  CACHE=$WORK/cache
  mkdir -p "$CACHE/models" "$WORK/models"
  MODEL_OK=0
  local part1=.dev/m1/$MODEL.part1
  if [ ! -f "$part1" ] && [ -f "$WORK/stash/$MODEL.part1" ]; then
    part1=$WORK/stash/$MODEL.part1
    echo ".dev/m1 is gone but call 1's stash is here: using $part1"
  fi
  if [ ! -f "$part1" ]; then
    M1_MISSING=1
    banner ".dev/m1 IS MISSING: the machine was given back after call 1 (or call 1 never ran)." \
      "The SmolLM2 oracle test CANNOT run in this call. The benchmarks still run (they need" \
      "only the tokenizer stub). To get the oracle test: call 1 again, then at once call 2 with" \
      "DEVICE_SKIP_BENCH=1 (scripts/device/README.md). This call exits 3."
    skip model ".dev/m1 missing"
  elif [ ! -f ".dev/m2/$MODEL.part2" ]; then
    banner ".dev/m2 IS MISSING: name .dev/m2 in this call's carry list"
    skip model ".dev/m2 missing"
    FAILED=1
  else
    # Reassemble from .dev/m1 (left by call 1) and .dev/m2 (this call), check the sha256.
    step model 60 bash -c 'cat "$1" "$2" >"$3" && cd "${3%/*}" && sha256sum -c "$4" && ls -l "$3"' _ \
      "$(realpath "$part1")" "$ROOT/.dev/m2/$MODEL.part2" "$CACHE/models/$MODEL" \
      "$ROOT/.dev/m2/$MODEL.sha256" && MODEL_OK=1
  fi
  check_adapter
  if [ "$MODEL_OK" = 1 ] && [ "$GPU_OK" = 1 ]; then
    step oracle-smollm2 180 env REALM_CACHE_DIR="$CACHE" \
      oracle_wgpu smollm2_on_wgpu_matches_llama_cpp --exact --test-threads=1 --nocapture
  else
    skip oracle-smollm2 "$([ "$MODEL_OK" = 1 ] && echo 'no usable GPU adapter' || echo 'no model')"
  fi
  if [ "${DEVICE_SKIP_BENCH:-0}" = 1 ]; then
    skip benchmarks "DEVICE_SKIP_BENCH=1"
    return
  fi
  if [ "$GPU_OK" != 1 ]; then
    skip benchmarks "no usable GPU adapter"
    return
  fi
  # synth needs only the tokenizer: the real model when it is here, else the stub extended to
  # the model's size (sparse; byte-identical synth output, checked by bundle.sh's author).
  local vocab=$CACHE/models/$MODEL
  if [ "$MODEL_OK" != 1 ]; then
    vocab=$WORK/smollm2-vocab.gguf
    gunzip -c .dev/bin/smollm2-vocab.gguf.gz >"$vocab" && truncate -s "$MODEL_BYTES" "$vocab"
    echo "synth --vocab-from the tokenizer stub $vocab"
  fi
  local smol=$WORK/models/smollm2-135m-q4_1.gguf big=$WORK/models/llama-7b-q4_0.gguf
  synth_bench smollm2 60 "$smol" --shape smollm2-135m --quant q4_1 --vocab-from "$vocab"
  if [ "$QUICK" = 1 ]; then
    skip llama-7b "DEVICE_QUICK=1"
  elif [ "${DEVICE_SKIP_7B:-0}" = 1 ]; then
    skip llama-7b "DEVICE_SKIP_7B=1"
  else
    synth_bench llama7b 240 "$big" --shape llama-7b --quant q4_0 --vocab-from "$vocab"
  fi
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "--- nvidia-smi after the benchmarks"
    timeout 20 nvidia-smi --format=csv --query-gpu=name,memory.used,clocks.sm,clocks.mem,pstate,power.draw,temperature.gpu
  fi
}

# --- summaries --------------------------------------------------------------------------------
peak_gbs() { # the card's datasheet memory bandwidth, GB/s, and a note
  if [ -n "${DEVICE_PEAK_GBS:-}" ]; then
    echo "$DEVICE_PEAK_GBS DEVICE_PEAK_GBS (given)"
    return
  fi
  case "$GPU_NAME" in
    *H200*) echo "4800 H200 HBM3e datasheet 4.8 TB/s (a device-to-device copy measured ~4.3 TB/s here)" ;;
    *H100*NVL*) echo "3900 H100 NVL datasheet 3.9 TB/s" ;;
    *H100*PCIe*) echo "2000 H100 PCIe datasheet 2.0 TB/s" ;;
    *H100*) echo "3350 H100 SXM HBM3 datasheet 3.35 TB/s (a device-to-device copy measured ~3.0 TB/s here)" ;;
    *) echo "0 unknown card '${GPU_NAME:-none}' (set DEVICE_PEAK_GBS)" ;;
  esac
}

summary2() {
  banner "phase 2 summary (${GPU_NAME:-no nvidia-smi})"
  local f
  f=$STEPDIR/oracle-smollm2.log
  [ -f "$f" ] && grep -E '^test result:|on wgpu: |panicked|FAILED|failures' "$f" | sed 's/^/oracle: /'
  local peak note label model wbytes
  read -r peak note <<<"$(peak_gbs)"
  echo "bandwidth assumption: peak $peak GB/s = $note"
  for f in "$STEPDIR"/batched-*.log; do
    [ -f "$f" ] || continue
    grep -E '^\|' "$f" | sed "s/^/$(basename "$f" .log): /" || true
  done
  for f in "$STEPDIR"/bench-*.log; do
    [ -f "$f" ] || continue
    label=$(basename "$f" .log)
    label=${label#bench-}
    grep -E '^(pp|tg)[0-9]|^host:' "$f" | sed "s/^/bench-$label: /"
    # Generation reads every weight once per token: tok/s x weight bytes = its bandwidth.
    model=${label%-greedy}
    model=${model%-coop}
    wbytes=$(grep -o '"tensor_bytes": *[0-9]*' "$WORK/models/$model.json" 2>/dev/null | grep -o '[0-9]*$')
    [ -n "$wbytes" ] && grep -E '^tg[0-9]' "$f" | awk -v w="$wbytes" -v peak="$peak" -v l="$label" '{
      g = $2 * w / 1e9
      printf "bench-%s: generation reads %.1f MB of weights per token: %.1f GB/s = %s of peak (KV and activations not counted)\n", l, w / 1e6, g, (peak > 0 ? sprintf("%.1f%%", 100 * g / peak) : "-")
    }'
  done
  echo "(%peak = the profile's GB/s column / peak; the profile serializes submits, so its per-op"
  echo " times are GPU times of each pass, and the bench's tok/s above are the ones to quote)"
  for f in "$STEPDIR"/profile-*.log; do
    [ -f "$f" ] || continue
    echo "--- $(basename "$f" .log)"
    awk -v peak="$peak" '
      /^profile: GPU time per op/ { on = 1; print "  " $0; next }
      on && $1 == "op" { printf "  %-40s %7s %10s %6s %9s %7s\n", "op", "calls", "total ms", "%", "GB/s", "%peak"; next }
      on && NF >= 7 && $(NF-5) ~ /^[0-9]+$/ {
        op = $1; for (i = 2; i <= NF - 6; i++) op = op " " $i
        gbs = $NF; pct = "-"
        if (gbs ~ /^[0-9.]+$/ && peak > 0) pct = sprintf("%.1f%%", 100 * gbs / peak)
        printf "  %-40s %7s %10s %6s %9s %7s\n", op, $(NF-5), $(NF-4), $(NF-2), gbs, pct
        if (gbs ~ /^[0-9.]+$/) { bytes += $(NF-1) * 1e6; secs += $(NF-4) / 1e3 }
        next
      }
      on { on = 0 }
      END {
        if (secs > 0) {
          g = bytes / secs / 1e9
          printf "  %-40s %7s %10.2f %6s %9.2f %7s\n", "(ops with a byte count, together)", "", secs * 1e3, "", g, (peak > 0 ? sprintf("%.1f%%", 100 * g / peak) : "-")
        }
      }' "$f"
  done
}

summary1() {
  banner "phase 1 summary (${GPU_NAME:-no nvidia-smi})"
  grep -hE '^\[[0-9]+\] |^    tier:' "$STEPDIR"/info-devices*.log 2>/dev/null
  [ -f "$STEPDIR/conformance.log" ] &&
    grep -E '^test result:|^test .* \.\.\. |panicked|failures' "$STEPDIR/conformance.log"
}

main() {
  DEADLINE=$((SECONDS + BUDGET))
  local t0 rc=0
  t0=$(date +%s.%N)
  setup_machine
  setup_bundle || {
    record bundle FAIL 4 "$(secs_since "$t0")" ".dev/bin missing or corrupt"
    printf '%s\n' "${STEPS[@]}"
    return 4
  }
  M1_MISSING=0
  if [ "$PHASE" = 1 ]; then
    phase1
    summary1
  else
    phase2
    summary2 | tee "$OUT/phase2-summary.txt"
  fi
  [ "$FAILED" = 1 ] && rc=1
  [ "$M1_MISSING" = 1 ] && rc=3
  banner "phase $PHASE step status ($(secs_since "$t0")s in all; exit $rc)"
  printf '%s\n' "${STEPS[@]}"
  return "$rc"
}

main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
