#!/usr/bin/env python3
"""Structured-output cost benchmark (issue 18): tokens/s of schema-constrained answers against
unconstrained answers of the same length on the same prompts, on one release realm-server, and
the token-mask time per token. A benchmark program, not a test (scripts/test.sh does not run
it); scripts/bench-structured.sh runs it.

For each model, each round, each of the schemas below (the prompts of the server's structured
tests), in pairs:
  constrained    POST /v1/chat/completions, greedy (or --temperature T, seed 7), max_tokens 200,
                 response_format json_schema:
                 its answer has k tokens (it ends by itself: finish "stop")
  unconstrained  the same request without response_format, max_tokens k, ignore_eos: the same
                 number of tokens from the same prompt, free
Decode speed of each: the server's own `timings.predicted_per_second` of the request (the
engine's time from the first to the last token, transport left out). The pair runs back to back
(alternating which goes first), one request at a time ("single stream"); then 8 concurrent pairs:
the 8 constrained requests at once, then the 8 unconstrained ones at once, each set's aggregate
tokens/s = its tokens / the wall time from first send to last answer.

Prompt lookup is off (--draft-max 0): it would speed up the free answers (which repeat
themselves) and not the constrained ones, and this measures the constraint alone.

Mask time: /metrics before and after each model's run: realm_constrained_mask_seconds_total /
realm_constrained_masks_total (time computing a mask per constrained token, on its own thread
beside the forward pass) and realm_constrained_mask_wait_seconds_total / masks (how long steps
waited for masks after their forward pass: what masks added to the step). Refused: the share
of constrained tokens whose best token the constraint refused (realm_constrained_refused_total;
greedy picks: those rows' logits were read after their step).

Usage: scripts/bench-structured.py [--rounds 5] [--models smollm2,gemma3] [--json PATH]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("REALM_CACHE_DIR", os.path.expanduser("~/.cache/realm"))
MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-Q4_K_M.gguf",
}
SCHEMAS = [
    ("Invent a person with an address.", {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "address": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                        "required": ["city", "zip"], "additionalProperties": False},
        },
        "required": ["name", "age", "address"], "additionalProperties": False}),
    ("Write a short shopping list.", {
        "type": "object",
        "properties": {"items": {"type": "array", "minItems": 2, "maxItems": 4, "items": {
            "type": "object", "properties": {"name": {"type": "string", "maxLength": 30}, "qty": {"type": "integer", "minimum": 1, "maximum": 20}},
            "required": ["name", "qty"], "additionalProperties": False}}},
        "required": ["items"], "additionalProperties": False}),
    ("Describe today's weather.", {
        "type": "object",
        "properties": {"sky": {"enum": ["sunny", "cloudy", "rainy", "snowy"]},
                       "wind": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 200}, {"type": "null"}]},
                       "summary": {"type": "string", "maxLength": 80}},
        "required": ["sky", "wind", "summary"], "additionalProperties": False}),
    ("Describe an event.", {
        "type": "object",
        "properties": {"title": {"type": "string", "maxLength": 50}, "date": {"type": "string", "format": "date"},
                       "id": {"type": "string", "format": "uuid"}},
        "required": ["title", "date", "id"], "additionalProperties": False}),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())


def metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out


TEMPERATURE = 0.0


def constrained(prompt: str, schema: dict) -> dict:
    return {"messages": [{"role": "user", "content": prompt}], "max_tokens": 200, "temperature": TEMPERATURE, "seed": 7,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}


def free(prompt: str, k: int) -> dict:
    return {"messages": [{"role": "user", "content": prompt}], "max_tokens": k, "temperature": TEMPERATURE, "seed": 7, "ignore_eos": True}


def decode_tps(r: dict) -> tuple[int, float]:
    t = r["timings"][0] if isinstance(r["timings"], list) else r["timings"]
    return r["usage"]["completion_tokens"], t["predicted_per_second"]


def run_model(name: str, rounds: int, threads: int) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    model = os.path.join(CACHE, "models", MODELS[name])
    proc = subprocess.Popen([os.path.join(ROOT, "target/release/realm-server"), "-m", model, "--host", "127.0.0.1",
                             "--port", str(port), "-t", str(threads), "--max-running", "16",
                             # no prompt lookup: it drafts for free answers, not constrained ones
                             "--draft-max", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(0.2)
        # warm-up: the grammar tables (first constrained request), the prefix cache of each prompt
        for p, s in SCHEMAS:
            post(url, constrained(p, s))
            post(url, free(p, 8))
        m0 = metrics(url)
        single = []  # (constrained tps, free tps, k)
        for r in range(rounds):
            for i, (p, s) in enumerate(SCHEMAS):
                first_c = (r + i) % 2 == 0
                if first_c:
                    k, tc = decode_tps(post(url, constrained(p, s)))
                    _, tf = decode_tps(post(url, free(p, k)))
                else:
                    # the free request needs k: take it from the previous constrained answer of this prompt
                    k = next((x[2] for x in reversed(single) if x[3] == i), None)
                    if k is None:
                        k, tc = decode_tps(post(url, constrained(p, s)))
                        _, tf = decode_tps(post(url, free(p, k)))
                    else:
                        _, tf = decode_tps(post(url, free(p, k)))
                        k2, tc = decode_tps(post(url, constrained(p, s)))
                        assert k2 == k, (k2, k)  # the same answer (greedy, or the same seed)
                single.append((tc, tf, k, i))
        m1 = metrics(url)
        batch = []  # (constrained agg tps, free agg tps)
        batch_tokens = 0  # constrained tokens in the 8-stream sets
        reqs = [SCHEMAS[j % len(SCHEMAS)] for j in range(8)]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            for r in range(rounds):
                t0 = time.perf_counter()
                outs = list(ex.map(lambda ps: post(url, constrained(*ps)), reqs))
                tc = sum(o["usage"]["completion_tokens"] for o in outs) / (time.perf_counter() - t0)
                ks = [o["usage"]["completion_tokens"] for o in outs]
                batch_tokens += sum(ks)
                t0 = time.perf_counter()
                outs = list(ex.map(lambda pk: post(url, free(pk[0][0], pk[1])), zip(reqs, ks)))
                tf = sum(o["usage"]["completion_tokens"] for o in outs) / (time.perf_counter() - t0)
                batch.append((tc, tf))
        m2 = metrics(url)
    finally:
        proc.terminate()
        proc.wait(30)

    def mask(a, b, tokens):
        n = b["realm_constrained_masks_total"] - a["realm_constrained_masks_total"]
        refused = b.get("realm_constrained_refused_total", 0) - a.get("realm_constrained_refused_total", 0)
        return {
            "masks": n,
            "refused": refused,
            "refused_share": refused / max(tokens, 1),
            "mask_us_per_token": 1e6 * (b["realm_constrained_mask_seconds_total"] - a["realm_constrained_mask_seconds_total"]) / max(n, 1),
            "wait_us_per_token": 1e6 * (b["realm_constrained_mask_wait_seconds_total"] - a["realm_constrained_mask_wait_seconds_total"]) / max(n, 1),
        }

    ratios = [c / f for c, f, _, _ in single]
    bratios = [c / f for c, f in batch]
    return {
        "model": name,
        "single": {"ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                    "constrained_tps": statistics.median(c for c, _, _, _ in single), "free_tps": statistics.median(f for _, f, _, _ in single),
                    "tokens_median": statistics.median(k for _, _, k, _ in single),
                    **mask(m0, m1, sum(k for _, _, k, _ in single))},
        "batch8": {"ratio_median": statistics.median(bratios), "ratio_min": min(bratios), "ratio_max": max(bratios),
                    "constrained_tps": statistics.median(c for c, _ in batch), "free_tps": statistics.median(f for _, f in batch),
                    **mask(m1, m2, batch_tokens)},
        "samples": {"single": single, "batch8": batch},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", default="smollm2,gemma3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=0.0, help="0: greedy (the best token checked alone); above: sampled (a mask every token)")
    ap.add_argument("--json")
    a = ap.parse_args()
    global TEMPERATURE
    TEMPERATURE = a.temperature
    load0 = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    res = [run_model(m, a.rounds, a.threads) for m in a.models.split(",")]
    load1 = os.getloadavg()[0]
    print(f"structured output cost: {a.rounds} rounds, temperature {a.temperature}, {started}, load {load0:.2f} -> {load1:.2f}\n")
    print("| model | streams | constrained tok/s | free tok/s | constrained / free (median, min–max) | answer tokens | mask µs/token | waited µs/token | refused |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in res:
        s, b = r["single"], r["batch8"]
        print(f"| {r['model']} | 1 | {s['constrained_tps']:.1f} | {s['free_tps']:.1f} | {s['ratio_median']:.3f} ({s['ratio_min']:.3f}–{s['ratio_max']:.3f}) | {s['tokens_median']:.0f} | {s['mask_us_per_token']:.0f} | {s['wait_us_per_token']:.0f} | {100 * s['refused_share']:.1f}% |")
        print(f"| {r['model']} | 8 | {b['constrained_tps']:.1f} | {b['free_tps']:.1f} | {b['ratio_median']:.3f} ({b['ratio_min']:.3f}–{b['ratio_max']:.3f}) | | {b['mask_us_per_token']:.0f} | {b['wait_us_per_token']:.0f} | {100 * b['refused_share']:.1f}% |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"started": started, "load": [load0, load1], "results": res}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
