#!/usr/bin/env bash
# The serving engine against llama.cpp, in the same run on the same machine: `realm
# batched-bench` and `llama-batched-bench` (built by scripts/build-llama-bench.sh from the same
# llama-cpp-python==0.3.36 sdist as llama-bench) alternate, for each model, ROUNDS times, with
# -npp 128 -ntg 128 -npl 1,2,4,8,16 -c 4096 on THREADS threads. Every run's numbers and the
# load average before it go to a TSV; the medians per (engine, model, B) and the goals' ratios
# are printed at the end. Also measured: peak RSS of the B=16 run of each engine (GNU time),
# and realm's time to first token with a cached 512-token prefix against uncached.
# Usage: scripts/bench-batched.sh [ROUNDS=3]   (THREADS=2, MODELS_LIST="a.gguf b.gguf")
# ISA=avx2: realm with REALM_CPU_ISA=avx2 against llama.cpp built for AVX2 only (LLAMA_ISA=avx2).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${ISA:-}" ]; then
  export REALM_CPU_ISA="$ISA" LLAMA_ISA=avx2
fi
ROUNDS="${1:-3}"
THREADS="${THREADS:-2}"
MODELS="${REALM_CACHE_DIR:-$HOME/.cache/realm}/models"
LLAMA=$(scripts/build-llama-bench.sh llama-batched-bench)
cargo build --release --locked -p realm-cli >&2
REALM=target/release/realm
ARGS=(-npp 128 -ntg 128 -npl 1,2,4,8,16)
OUT=$(mktemp -d)
TSV="$OUT/runs.tsv"
printf 'round\tengine\tmodel\tpl\tspeed_pp\tspeed_tg\tspeed\tload1\n' >"$TSV"

# One line per run of one engine: round engine model pl speed_pp speed_tg speed load.
tsv() { python3 -c '
import json, sys
r, e, m, load = sys.argv[1:5]
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    pl, pp, tg, sp = d["pl"], d["speed_pp"], d["speed_tg"], d["speed"]
    print(f"{r}\t{e}\t{m}\t{pl}\t{pp:.2f}\t{tg:.2f}\t{sp:.2f}\t{load}")
' "$@"; }

for round in $(seq 1 "$ROUNDS"); do
  for model in ${MODELS_LIST:-SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-Q4_K_M.gguf}; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$REALM" batched-bench "$MODELS/$model" "${ARGS[@]}" -c 4096 --threads "$THREADS" --json |
      tsv "$round" realm "$model" "$load" | tee -a "$TSV"
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$LLAMA" -m "$MODELS/$model" "${ARGS[@]}" -c 4096 -t "$THREADS" --output-format jsonl 2>/dev/null |
      tsv "$round" llama.cpp "$model" "$load" | tee -a "$TSV"
  done
done

# Peak RSS with 16 sequences × 256 tokens (the B=16 run alone), each engine.
for model in ${MODELS_LIST:-SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-Q4_K_M.gguf}; do
  /usr/bin/time -o "$OUT/rss" -f '%M' "$REALM" batched-bench "$MODELS/$model" -npp 128 -ntg 128 \
    -npl 16 -c 4096 --threads "$THREADS" --json >/dev/null
  r=$(tail -n 1 "$OUT/rss")
  /usr/bin/time -o "$OUT/rss" -f '%M' "$LLAMA" -m "$MODELS/$model" -npp 128 -ntg 128 -npl 16 \
    -c 4096 -t "$THREADS" --output-format jsonl >/dev/null 2>&1
  l=$(tail -n 1 "$OUT/rss")
  kv=$("$REALM" info "$MODELS/$model" --json | python3 -c '
import json, sys
h = json.load(sys.stdin)["hparams"]
print(h["n_layer"] * h["n_head_kv"] * (h["head_dim_k"] + h["head_dim_v"]) * 2 * 16 * 256)')
  size=$(stat -c %s "$MODELS/$model")
  echo "rss $model: realm $((r / 1024)) MiB, llama.cpp $((l / 1024)) MiB; model file $((size >> 20)) MiB, KV of the tokens in use $((kv >> 20)) MiB"
done

# Time to first token with a cached 512-token prefix (realm; llama-batched-bench has no such test).
for model in ${MODELS_LIST:-SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-Q4_K_M.gguf}; do
  echo "ttft $model: $("$REALM" batched-bench "$MODELS/$model" --prefix-ttft 512 -r 5 --threads "$THREADS")"
done

python3 - "$TSV" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
for key in {(r["engine"], r["model"], r["pl"]) for r in rows}:
    sel = [r for r in rows if (r["engine"], r["model"], r["pl"]) == key]
    med[key] = {k: statistics.median(float(r[k]) for r in sel) for k in ("speed_pp", "speed_tg", "speed")}
    med[key]["load"] = statistics.median(float(r["load1"]) for r in sel)
print("\nmedians (tok/s): engine model B  S_PP  S_TG  S  [load]")
for key in sorted(med, key=lambda k: (k[1], k[0], int(k[2]))):
    m = med[key]
    print(f"  {key[0]:9} {key[1]:34} {key[2]:>2} {m['speed_pp']:8.1f} {m['speed_tg']:8.1f} {m['speed']:8.1f}  [{m['load']:.2f}]")
for model in sorted({k[1] for k in med}):
    try:
        r1, r8 = med[("realm", model, "1")], med[("realm", model, "8")]
        l8 = med[("llama.cpp", model, "8")]
    except KeyError:
        continue
    pp_ratio = statistics.median(med[("realm", model, b)]["speed_pp"] / med[("llama.cpp", model, b)]["speed_pp"]
                                 for b in ("1", "2", "4", "8", "16") if ("llama.cpp", model, b) in med)
    print(f"{model}: S_TG(8)/S_TG(1) = {r8['speed_tg'] / r1['speed_tg']:.2f} (goal >= 3.5); "
          f"S_TG(8) vs llama.cpp = {r8['speed_tg'] / l8['speed_tg']:.2f}x (goal >= 1.8); "
          f"S_PP vs llama.cpp (median over B) = {pp_ratio:.2f}x (goal >= 1.5)")
PY
echo "runs: $TSV" >&2
