#!/usr/bin/env bash
# Realm vs llama.cpp on the CPU, in the same run on the same machine: `realm bench` and
# `llama-bench` alternate, for each model and thread count, ROUNDS times; every run's
# tokens/s and the load average before it are printed as TSV (medians are taken from these).
# Usage: scripts/bench-cpu.sh [ROUNDS=3] [PP=512] [TG=128]
# BUSY=1 keeps one core busy with a spinning shell loop for the whole run (the "loaded 2-core
# box" case: how each engine's threads cope when one core is taken by another process).
# THREADS="1 2" and MODELS_LIST="a.gguf b.gguf" narrow the runs. REALM_BASE=path/to/realm adds
# an older realm binary to every round (engine "realm-base"): a same-window A/B of two commits.
# ISA=avx2 runs realm with REALM_CPU_ISA=avx2 against llama.cpp built for AVX2 only
# (LLAMA_ISA=avx2 scripts/build-llama-bench.sh), whatever this CPU has beyond it; the level realm
# ran is printed per row (ISA=avx-vnni caps realm only; llama.cpp stays at AVX2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"; PP="${2:-512}"; TG="${3:-128}"
MODELS="${REALM_CACHE_DIR:-$HOME/.cache/realm}/models"
if [ -n "${ISA:-}" ]; then
  export REALM_CPU_ISA="$ISA" LLAMA_ISA=avx2
fi
LLAMA_BENCH=$(scripts/build-llama-bench.sh)
cargo build --release --locked -p realm-cli >&2
REALM=target/release/realm
BUSY="${BUSY:-0}"
if [ "$BUSY" = 1 ]; then
  bash -c 'while :; do :; done' &
  SPINNER=$!
  trap 'kill $SPINNER 2>/dev/null' EXIT
fi
printf 'round\tengine\tmodel\tthreads\ttest\ttok_s\tload1\tbusy\tisa\n'
for round in $(seq 1 "$ROUNDS"); do
  for model in ${MODELS_LIST:-SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-Q4_K_M.gguf}; do
    for t in ${THREADS:-1 2}; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      $REALM bench "$MODELS/$model" -p "$PP" -n "$TG" -r 3 --threads "$t" --json |
        python3 -c "import json,sys; d=json.load(sys.stdin); print(f\"$round\trealm\t$model\t$t\tpp$PP\t{d['pp_tok_s']:.2f}\t$load\t$BUSY\t{d['cpu_isa']}\"); print(f\"$round\trealm\t$model\t$t\ttg$TG\t{d['tg_tok_s']:.2f}\t$load\t$BUSY\t{d['cpu_isa']}\")"
      if [ -n "${REALM_BASE:-}" ]; then
        load=$(cut -d' ' -f1 /proc/loadavg)
        "$REALM_BASE" bench "$MODELS/$model" -p "$PP" -n "$TG" -r 3 --threads "$t" --json |
          python3 -c "import json,sys; d=json.load(sys.stdin); print(f\"$round\trealm-base\t$model\t$t\tpp$PP\t{d['pp_tok_s']:.2f}\t$load\t$BUSY\"); print(f\"$round\trealm-base\t$model\t$t\ttg$TG\t{d['tg_tok_s']:.2f}\t$load\t$BUSY\")"
      fi
      load=$(cut -d' ' -f1 /proc/loadavg)
      "$LLAMA_BENCH" -m "$MODELS/$model" -p "$PP" -n "$TG" -r 3 -t "$t" -o json 2>/dev/null |
        python3 -c "import json,sys; [print(f\"$round\tllama.cpp\t$model\t$t\t{'pp' if r['n_prompt'] else 'tg'}{r['n_prompt'] or r['n_gen']}\t{r['avg_ts']:.2f}\t$load\t$BUSY\t${LLAMA_ISA:-native}\") for r in json.load(sys.stdin)]"
    done
  done
done
