#!/usr/bin/env python3
"""Prompt-lookup speculative decoding benchmark (issue 18): realm-server with drafting
(--draft-max 8; with --modes off,on,always also --draft-always, drafting without weighing
chances against measured step costs) against the same server without (--draft-max 0), greedy, on input-grounded
tasks (extract fields from a passage, rewrite code with one change, summarise with quotes) and
on free chat, single stream and 8 concurrent, both models; and llama.cpp's own lookup decoding
(llama-lookup, from the same sdist as the other references) on the same prompts where it is
built. A benchmark program, not a test; scripts/bench-lookup.sh runs it.

Each request is POST /v1/completions with the model's chat template written out in the
prompt (so llama-lookup gets the very same text), temperature 0, max_tokens 192. Greedy
output is the same with and without drafts (checked here: the texts of the two servers must
agree; every mode's). Speed of a request: the server's own decode speed (timings.predicted_per_second: the
tokens after the first over the time from the first to the last; the prompt is left out); 8
concurrent: the 8 answers' tokens / wall time from the first send to the last answer. Each
round starts with another server; one server at a time (each started and stopped by PID).

Usage: scripts/bench-lookup.py [--rounds 3] [--models smollm2,gemma3] [--modes off,on,always] [--json PATH]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("REALM_CACHE_DIR", os.path.expanduser("~/.cache/realm"))
MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf", "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"),
    "gemma3": ("gemma-3-270m-Q4_K_M.gguf", "<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n"),
}
PASSAGE = (
    "The Riverside Library opens at 9 a.m. on weekdays and at 10 a.m. on Saturdays. It is closed on "
    "Sundays and public holidays. Its address is 42 Elm Street, Springfield, and its phone number is "
    "555-0142. The head librarian is Margaret Chen, who has run the library since 2009. Members may "
    "borrow up to eight books at a time for three weeks, and may renew a loan twice online. The "
    "reading room on the second floor has forty desks, free wireless internet and a quiet area for "
    "students. Children's story time is held every Wednesday at 4 p.m. in the east wing."
)
CODE = '''def summarize_orders(orders):
    totals = {}
    for order in orders:
        customer = order["customer"]
        amount = order["price"] * order["quantity"]
        if customer not in totals:
            totals[customer] = 0
        totals[customer] = totals[customer] + amount
    result = []
    for customer, total in totals.items():
        result.append({"customer": customer, "total": round(total, 2)})
    result.sort(key=lambda r: r["total"], reverse=True)
    return result
'''
TASKS = {
    "extract": f"{PASSAGE}\n\nFrom the passage above, extract the library's address, phone number, opening hours and loan rules, quoting the passage's words.",
    "code": f"Rewrite this Python function, renaming the variable `totals` to `by_customer`, and change nothing else. Output the whole function.\n\n{CODE}",
    "summary": f"{PASSAGE}\n\nSummarise the passage in a few sentences, quoting its key sentences word for word.",
    "chat1": "Write a short story about a robot who learns to paint.",
    "chat2": "Explain how photosynthesis works, in simple terms.",
    "chat3": "Give five tips for learning a new language.",
}
GROUNDED = ["extract", "code", "summary"]
FREE = ["chat1", "chat2", "chat3"]
MAX_TOKENS = 192


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The servers compared: drafting off, on (the default: a draft token only where its chance pays
# for its row, by measured step times), and on whenever the n-gram matches (--draft-always).
MODES = {"off": ["--draft-max", "0"], "on": ["--draft-max", "8"], "always": ["--draft-max", "8", "--draft-always"]}


def start(model: str, mode: str, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [os.path.join(ROOT, "target/release/realm-server"), "-m", os.path.join(CACHE, "models", model), "--host", "127.0.0.1",
         "--port", str(port), "-t", str(threads), *MODES[mode], "--max-running", "16"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except Exception:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("realm-server did not start")


def complete(url: str, prompt: str) -> dict:
    body = {"prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0}
    req = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def run_config(model: str, template: str, mode: str, threads: int) -> dict:
    proc, url = start(model, mode, threads)
    try:
        # warm-up (and the prompts into the prefix cache, equally for both servers)
        for t in TASKS.values():
            complete(url, template.format(t))
        single = {}
        for name, t in TASKS.items():
            r = complete(url, template.format(t))
            tm = r["timings"][0]
            single[name] = {
                "tokens": r["usage"]["completion_tokens"],
                "text": r["choices"][0]["text"],
                "tps": tm["predicted_per_second"],
                "drafted": tm.get("draft_n", 0),
                "accepted": tm.get("draft_n_accepted", 0),
            }
        batch = {}
        for kind, names in (("grounded", GROUNDED), ("free", FREE)):
            prompts = [template.format(TASKS[names[i % len(names)]]) for i in range(8)]
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                t0 = time.perf_counter()
                outs = list(ex.map(lambda p: complete(url, p), prompts))
                wall = time.perf_counter() - t0
            batch[kind] = sum(o["usage"]["completion_tokens"] for o in outs) / wall
        return {"single": single, "batch": batch}
    finally:
        proc.terminate()
        proc.wait(30)


def llama_lookup(model: str, template: str, threads: int) -> dict:
    """llama-lookup's speed on each task (greedy, draft 8, n-gram 1-4 as its defaults), when
    built (scripts/build-llama-bench.sh llama-lookup)."""
    binary = os.path.join(CACHE, "llama.cpp-0c1e570/build/bin/llama-lookup")
    if not os.path.exists(binary):
        return {}
    out = {}
    for name, t in TASKS.items():
        p = subprocess.run(
            [binary, "-m", os.path.join(CACHE, "models", model), "-p", template.format(t), "-n", str(MAX_TOKENS),
             "-t", str(threads), "--temp", "0", "--spec-draft-n-max", "8", "-c", "4096"],
            capture_output=True, text=True, timeout=600)
        log = p.stdout + p.stderr
        m = re.search(r"decoded\s+(\d+)\s+tokens in\s+([\d.]+) seconds, speed:\s+([\d.]+) t/s", log)
        d = re.search(r"n_drafted\s*=\s*(\d+)", log)
        a = re.search(r"n_accept\s*=\s*(\d+)", log)
        if m:
            out[name] = {"tokens": int(m.group(1)), "tps": float(m.group(3)),
                         "drafted": int(d.group(1)) if d else None, "accepted": int(a.group(1)) if a else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="smollm2,gemma3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", default="off,on", help="of " + ",".join(MODES) + "; the first is the baseline")
    ap.add_argument("--json")
    a = ap.parse_args()
    modes = a.modes.split(",")
    load0 = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results = {}
    for m in a.models.split(","):
        model, template = MODELS[m]
        runs = {mode: [] for mode in modes}
        for r in range(a.rounds):
            # each round in another order: the first server of a round is not always the same
            for mode in modes[r % len(modes):] + modes[:r % len(modes)]:
                runs[mode].append(run_config(model, template, mode, a.threads))
        # greedy: the same answers with and without drafts
        for name in TASKS:
            texts = {mode: runs[mode][0]["single"][name]["text"] for mode in modes}
            assert len(set(texts.values())) == 1, f"{m} {name}: the answers differ"
        lk = llama_lookup(model, template, a.threads)
        results[m] = {"runs": runs, "llama_lookup": lk}
    load1 = os.getloadavg()[0]
    print(f"prompt lookup: {a.rounds} rounds, {started}, load {load0:.2f} -> {load1:.2f}\n")
    base, others = modes[0], modes[1:]
    head = [f"{base} tok/s"] + [c for o in others for c in (f"{o} tok/s", f"{o} / {base}", f"{o}: drafted → accepted")]
    print("| model | task | tokens | " + " | ".join(head) + " | llama-lookup tok/s (drafted → accepted) |")
    print("|---|---|--:|" + "--:|" * len(head) + "--:|")
    for m, res in results.items():
        med = lambda mode, f: statistics.median(f(x) for x in res["runs"][mode])
        for name in TASKS:
            b = med(base, lambda x: x["single"][name]["tps"])
            cells = [f"{b:.1f}"]
            for o in others:
                v = med(o, lambda x: x["single"][name]["tps"])
                s = res["runs"][o][0]["single"][name]
                cells += [f"{v:.1f}", f"{v / b:.2f}×", f"{s['drafted']} → {s['accepted']}"]
            tokens = res["runs"][base][0]["single"][name]["tokens"]
            lk = res["llama_lookup"].get(name)
            lks = f"{lk['tps']:.1f} ({lk['drafted']} → {lk['accepted']})" if lk else "–"
            print(f"| {m} | {name} | {tokens} | " + " | ".join(cells) + f" | {lks} |")
        for kind in ("grounded", "free"):
            b = med(base, lambda x: x["batch"][kind])
            cells = [f"{b:.1f}"]
            for o in others:
                v = med(o, lambda x: x["batch"][kind])
                cells += [f"{v:.1f}", f"{v / b:.2f}×", ""]
            print(f"| {m} | 8 concurrent, {kind} | | " + " | ".join(cells) + " | |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"started": started, "load": [load0, load1], "results": results}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
