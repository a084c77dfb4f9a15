#!/usr/bin/env python3
"""Load generator for OpenAI-compatible servers: realm-server against llama.cpp's llama-server.

Standard library only (asyncio streams speaking HTTP/1.1 to the server, a small SSE parser), so
what is measured is the servers and not a client library. Every request is
`POST /v1/completions` with `stream: true`, `ignore_eos: true`, `temperature: 0`,
`max_tokens: OUT` and `prompt` as a list of token ids.

Prompts come from a fixed English text (Python's own documentation topics, `pydoc_data.topics`,
in the standard library) tokenized once through each server's `POST /tokenize`
(`add_special: false`); the servers must agree on the ids (same GGUF), which is checked.

Workloads, per server, alternating servers for each step (only one server works at a time; the
order flips from one step to the next, so both see the same machine conditions):
  fixed   IN-token prompts (windows of the text at different offsets: no two requests share a
          prefix, no prefix cache helps), OUT tokens each, closed loop at each concurrency C:
          C workers send requests back to back until REQUESTS(C) = max(8, 4*C) are done.
  shared  one SHARED_PREFIX-token prefix (the same for every request) + a different 16..31-token
          question each, OUT_SHARED tokens, at each of SHARED_CONC; one unmeasured request
          first puts the prefix in the server's cache. This shows each server's prefix cache
          (llama-server's cache_prompt is on by default, with its --cache-ram prompt cache).

Measured per (server, workload, C): aggregate output tok/s (output tokens of the phase / wall
time of the phase), TTFT (request written -> first SSE chunk with non-empty text), inter-token
latency (between consecutive content chunks of a request), per-request decode tok/s (tokens after
the first / time from first to last content chunk), errors (connection failures, non-200
statuses, chunks carrying `error`), completed requests, prompt tokens the server reports it
took from its cache (`usage.prompt_tokens_details.cached_tokens`: about 0 for fixed-length
prompts, else a prefix cache helped); the 1-minute load average before each phase. Percentiles are taken over the samples of all rounds pooled; tok/s is the median over
rounds.

Usage:
  scripts/bench-server.py --server realm=http://127.0.0.1:8090 --server llama.cpp=http://127.0.0.1:8091 \\
      [--cmd realm='realm-server -m ...'] [--rounds 1] [--in 128] [--out 128] [--conc 1,4,8,16]
      [--requests N] [--shared-conc 1,4] [--shared-prefix 512] [--out-shared 32]
      [--shared-requests N] [--prompt-offset K] [--single-stream-tgs X] [--json PATH]
BENCH_JSON=path is the same as --json path. Prints markdown tables; the JSON has every number.
"""

import argparse
import asyncio
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from urllib.parse import urlsplit

REQUEST_TIMEOUT_S = 600.0


# ----------------------------------------------------------------------------------------------
# HTTP/1.1 over asyncio streams


class HttpError(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection; reopened when the server closes it."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None
        self.status_seen = False

    async def open(self):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method, path, body, on_data=None):
        """Sends one request; returns (status, headers, body bytes, time sent). With on_data,
        each piece of the body is passed to on_data(bytes, arrival_time) as it arrives instead.
        A kept-alive connection that the server has closed meanwhile (llama-server closes it
        after each streamed answer without saying `Connection: close`) is opened again once."""
        reused = self.writer is not None
        try:
            return await self._request(method, path, body, on_data)
        except (HttpError, ConnectionError):
            if not reused or self.status_seen:
                raise
            self.close()
            return await self._request(method, path, body, on_data)

    async def _request(self, method, path, body, on_data):
        self.status_seen = False
        await self.open()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/json\r\nAccept: */*\r\nConnection: keep-alive\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        t_sent = time.perf_counter()
        self.writer.write(head + body)
        await self.writer.drain()
        r = self.reader
        line = await r.readline()
        if not line:
            raise HttpError("connection closed before the status line")
        self.status_seen = True
        parts = line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"bad status line {line!r}")
        status = int(parts[1])
        headers = {}
        while True:
            line = await r.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        chunks = []
        sink = on_data if on_data is not None else (lambda b, t: chunks.append(b))
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size_line = await r.readline()
                if not size_line:
                    raise HttpError("connection closed inside a chunked body")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while (await r.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                data = await r.readexactly(size)
                await r.readexactly(2)
                sink(data, time.perf_counter())
        elif "content-length" in headers:
            n = int(headers["content-length"])
            if n:
                sink(await r.readexactly(n), time.perf_counter())
        else:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                sink(data, time.perf_counter())
            self.close()
        if headers.get("connection", "").lower() == "close" or r.at_eof():
            self.close()
        return status, headers, b"".join(chunks), t_sent


async def call_json(base, method, path, obj=None):
    u = urlsplit(base)
    c = Conn(u.hostname, u.port)
    try:
        body = b"" if obj is None else json.dumps(obj).encode()
        status, _, data, _ = await c.request(method, path, body)
    finally:
        c.close()
    if status != 200:
        raise HttpError(f"{method} {path}: {status} {data[:300]!r}")
    return json.loads(data)


class Sse:
    """Splits a byte stream into server-sent events; calls on_event(data_str, time)."""

    def __init__(self, on_event):
        self.buf = b""
        self.on_event = on_event

    def feed(self, data, t):
        self.buf += data.replace(b"\r\n", b"\n")
        while True:
            i = self.buf.find(b"\n\n")
            if i < 0:
                return
            raw, self.buf = self.buf[:i], self.buf[i + 2 :]
            lines = [ln[5:].lstrip(b" ") for ln in raw.split(b"\n") if ln.startswith(b"data:")]
            if lines:  # comments (keep-alives) and other fields are skipped
                self.on_event(b"\n".join(lines).decode("utf-8", "replace"), t)


# ----------------------------------------------------------------------------------------------
# One streamed completion


async def one_request(conn, prompt, out_tokens):
    body = json.dumps(
        {
            "prompt": prompt,
            "max_tokens": out_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "ignore_eos": True,
            "temperature": 0,
        }
    ).encode()
    rec = {"ok": False, "error": None, "content_times": [], "chunk_tokens": 0, "usage": None}
    errors = []

    def on_event(data, t):
        if data == "[DONE]":
            rec["done"] = True
            return
        try:
            d = json.loads(data)
        except ValueError:
            errors.append(f"bad chunk {data[:200]!r}")
            return
        if "error" in d:
            errors.append(f"error chunk {json.dumps(d['error'])[:300]}")
            return
        for ch in d.get("choices") or []:
            if ch.get("text"):
                rec["content_times"].append(t)
                rec["chunk_tokens"] += 1
        if d.get("usage"):
            rec["usage"] = d["usage"]
        # The server's own decode speed (llama-server: a `timings` object; realm: a list with
        # one entry per choice): the engine's speed without the client's share of the CPU.
        tm = d.get("timings")
        if isinstance(tm, list):
            tm = tm[0] if tm else None
        if isinstance(tm, dict) and tm.get("predicted_per_second"):
            rec["server_decode_tps"] = tm["predicted_per_second"]

    sse = Sse(on_event)
    try:
        status, _, data, t_sent = await asyncio.wait_for(
            conn.request("POST", "/v1/completions", body, on_data=sse.feed), REQUEST_TIMEOUT_S
        )
    except Exception as e:  # connection failure or timeout: a fresh connection next time
        conn.close()
        rec["error"] = f"{type(e).__name__}: {e}"
        return rec
    if status != 200:
        rec["error"] = f"status {status}: {sse.buf[:300]!r}"
        return rec
    if errors:
        rec["error"] = errors[0]
        return rec
    if not rec["content_times"]:
        rec["error"] = "no content chunk"
        return rec
    rec["ok"] = True
    rec["t_sent"] = t_sent
    u = rec["usage"] or {}
    rec["out_tokens"] = u.get("completion_tokens") or rec["chunk_tokens"]
    rec["cached_tokens"] = (u.get("prompt_tokens_details") or {}).get("cached_tokens")
    return rec


async def closed_loop(base, prompts, conc, out_tokens):
    """conc workers take prompts off one list until it is empty; returns (records, wall_s)."""
    u = urlsplit(base)
    queue = list(reversed(prompts))
    records = []

    async def worker():
        conn = Conn(u.hostname, u.port)
        try:
            while queue:
                p = queue.pop()
                records.append(await one_request(conn, p, out_tokens))
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return records, time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------
# Statistics


def pct(xs, q):
    """Percentile q (0..100), linear between closest ranks (numpy's default)."""
    if not xs:
        return None
    s = sorted(xs)
    k = (len(s) - 1) * q / 100
    f = int(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


def median(xs):
    return pct(xs, 50)


def summarize(records, wall):
    ok = [r for r in records if r["ok"]]
    ttft = [(r["content_times"][0] - r["t_sent"]) * 1e3 for r in ok]
    itl, decode = [], []
    for r in ok:
        ts = r["content_times"]
        itl += [(b - a) * 1e3 for a, b in zip(ts, ts[1:])]
        if len(ts) > 1 and ts[-1] > ts[0]:
            decode.append((r["out_tokens"] - 1) / (ts[-1] - ts[0]))
    out = sum(r["out_tokens"] for r in ok)
    cached = [r["cached_tokens"] for r in ok if r.get("cached_tokens") is not None]
    server_decode = [r["server_decode_tps"] for r in ok if r.get("server_decode_tps")]
    return {
        "requests": len(records),
        "completed": len(ok),
        "errors": len(records) - len(ok),
        "error_samples": sorted({r["error"] for r in records if not r["ok"]})[:3],
        "short": sum(1 for r in ok if r["out_tokens"] != r.get("want")),
        "wall_s": wall,
        "output_tokens": out,
        "agg_tok_s": out / wall if wall > 0 else None,
        "ttft_ms": ttft,
        "itl_ms": itl,
        "decode_tok_s": decode,
        "server_decode_tok_s": server_decode,
        "cached_tokens_mean": sum(cached) / len(cached) if cached else None,
    }


def stats(xs):
    return {"p50": pct(xs, 50), "p99": pct(xs, 99), "mean": sum(xs) / len(xs) if xs else None,
            "n": len(xs)}


# ----------------------------------------------------------------------------------------------
# Prompts


def corpus_text(chars):
    import pydoc_data.topics as topics

    s = "\n\n".join(topics.topics[k] for k in sorted(topics.topics))
    return s[:chars]


class Prompts:
    """Token windows of the corpus, each used once per run (per server the same sequence)."""

    def __init__(self, tokens, n_in, prefix_len, offset):
        self.t = tokens
        self.offset = offset
        self.n_in = n_in
        # The first prefix_len tokens: the shared system prompt. Questions come from the next
        # 8192 tokens; fixed-length prompts from the rest, at offsets stepping by a prime.
        self.prefix = tokens[:prefix_len]
        self.q_lo, self.q_hi = prefix_len, prefix_len + 8192
        self.f_lo = self.q_hi
        self.span = len(tokens) - self.f_lo - n_in
        if self.span < 1024:
            raise SystemExit(f"the corpus has {len(tokens)} tokens: too few for IN={n_in}")

    def fixed(self, k):
        off = self.f_lo + ((k + self.offset) * 977) % self.span
        return self.t[off : off + self.n_in]

    def question(self, k):
        n = 16 + k % 16
        off = self.q_lo + ((k + self.offset) * 89) % (self.q_hi - self.q_lo - 32)
        return self.t[off : off + n]


# ----------------------------------------------------------------------------------------------


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cpu_model():
    for line in sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def fmt(x, nd=1):
    return "—" if x is None else f"{x:.{nd}f}"


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", action="append", required=True, help="NAME=BASE_URL (repeatable)")
    ap.add_argument("--cmd", action="append", default=[], help="NAME=command line (recorded)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--in", dest="n_in", type=int, default=128)
    ap.add_argument("--out", type=int, default=128)
    ap.add_argument("--conc", default="1,4,8,16")
    ap.add_argument("--requests", type=int, default=0, help="requests per fixed phase (default max(8, 4*C))")
    ap.add_argument("--shared-conc", default="1,4", help="empty: no shared-prefix workload")
    ap.add_argument("--shared-prefix", type=int, default=512)
    ap.add_argument("--out-shared", type=int, default=32)
    ap.add_argument("--shared-requests", type=int, default=0, help="per shared phase (default max(16, 8*C))")
    ap.add_argument("--single-stream-tgs", type=float, default=None,
                    help="`realm bench` single-stream tg tok/s, printed next to C=1")
    ap.add_argument("--prompt-offset", type=int, default=0,
                    help="first fixed-length prompt window: a second run against the same server "
                         "process needs another (e.g. 1000), else its prefix cache answers")
    ap.add_argument("--model", default="", help="recorded")
    ap.add_argument("--json", default=os.environ.get("BENCH_JSON"))
    a = ap.parse_args()

    servers = []
    for s in a.server:
        name, _, url = s.partition("=")
        servers.append((name, url.rstrip("/")))
    cmds = dict(c.split("=", 1) for c in a.cmd)
    concs = [int(x) for x in a.conc.split(",") if x]
    sconcs = [int(x) for x in a.shared_conc.split(",") if x]
    load_start = loadavg()

    # Tokens: the same ids from every server, else the run is not comparable.
    text = corpus_text(160_000)
    tok = {}
    for name, url in servers:
        tok[name] = (await call_json(url, "POST", "/tokenize", {"content": text, "add_special": False}))["tokens"]
    first = tok[servers[0][0]]
    agree = all(t == first for t in tok.values())
    if not agree:
        print("warning: the servers tokenize the corpus differently; each gets its own ids", file=sys.stderr)
    prompts = {name: Prompts(tok[name], a.n_in, a.shared_prefix, a.prompt_offset) for name, _ in servers}

    # Warm-up (unmeasured): one request each, prompts not used again.
    for name, url in servers:
        p = prompts[name]
        recs, _ = await closed_loop(url, [p.t[p.f_lo - 200 : p.f_lo - 200 + a.n_in]], 1, 8)
        if not recs[0]["ok"]:
            raise SystemExit(f"{name}: warm-up request failed: {recs[0]['error']}")

    runs = []  # one per (round, workload, C, server)
    counter = {name: 0 for name, _ in servers}
    qcounter = {name: 0 for name, _ in servers}
    step = 0
    for rnd in range(1, a.rounds + 1):
        for c in concs:
            n = a.requests or max(8, 4 * c)
            order = servers if step % 2 == 0 else servers[::-1]
            step += 1
            for name, url in order:
                p = prompts[name]
                ps = [p.fixed(counter[name] + i) for i in range(n)]
                counter[name] += n
                load = loadavg()[0]
                recs, wall = await closed_loop(url, ps, c, a.out)
                for r in recs:
                    r["want"] = a.out
                s = summarize(recs, wall)
                s.update(round=rnd, workload="fixed", server=name, conc=c, load1_before=load)
                runs.append(s)
                print(f"round {rnd} fixed C={c:<2} {name:10} {fmt(s['agg_tok_s'])} tok/s, "
                      f"TTFT p50 {fmt(pct(s['ttft_ms'], 50), 0)} ms, {s['completed']}/{s['requests']} ok "
                      f"[load {load:.2f}]", file=sys.stderr)
        for c in sconcs:
            n = a.shared_requests or max(16, 8 * c)
            order = servers if step % 2 == 0 else servers[::-1]
            step += 1
            for name, url in order:
                p = prompts[name]
                # The prefix into the server's cache first (unmeasured).
                await closed_loop(url, [p.prefix + p.question(10_000 + rnd * 100 + c)], 1, a.out_shared)
                ps = [p.prefix + p.question(qcounter[name] + i) for i in range(n)]
                qcounter[name] += n
                load = loadavg()[0]
                recs, wall = await closed_loop(url, ps, c, a.out_shared)
                for r in recs:
                    r["want"] = a.out_shared
                s = summarize(recs, wall)
                s.update(round=rnd, workload="shared", server=name, conc=c, load1_before=load)
                runs.append(s)
                print(f"round {rnd} shared C={c:<2} {name:10} TTFT p50 {fmt(pct(s['ttft_ms'], 50), 0)} ms "
                      f"p99 {fmt(pct(s['ttft_ms'], 99), 0)} ms, {s['completed']}/{s['requests']} ok "
                      f"[load {load:.2f}]", file=sys.stderr)
    load_end = loadavg()

    # Summaries: tok/s median over rounds; latency percentiles over the pooled samples.
    summary = []
    for wl, cs in (("fixed", concs), ("shared", sconcs)):
        for c in cs:
            for name, _ in servers:
                sel = [r for r in runs if (r["workload"], r["conc"], r["server"]) == (wl, c, name)]
                if not sel:
                    continue
                pool = lambda k: [x for r in sel for x in r[k]]  # noqa: E731
                summary.append({
                    "workload": wl, "conc": c, "server": name, "rounds": len(sel),
                    "requests": sum(r["requests"] for r in sel),
                    "completed": sum(r["completed"] for r in sel),
                    "errors": sum(r["errors"] for r in sel),
                    "short": sum(r["short"] for r in sel),
                    "agg_tok_s": median([r["agg_tok_s"] for r in sel if r["agg_tok_s"] is not None]),
                    "ttft_ms": stats(pool("ttft_ms")),
                    "itl_ms": stats(pool("itl_ms")),
                    "decode_tok_s_per_request": stats(pool("decode_tok_s")),
                    "server_decode_tok_s_per_request": stats(pool("server_decode_tok_s")),
                    "cached_tokens_mean": median([r["cached_tokens_mean"] for r in sel
                                                  if r["cached_tokens_mean"] is not None]),
                    "load1_before": median([r["load1_before"] for r in sel]),
                })

    def get(wl, c, name):
        return next((s for s in summary if (s["workload"], s["conc"], s["server"]) == (wl, c, name)), None)

    lines = []
    lines.append(f"### Fixed length: IN={a.n_in} OUT={a.out}, closed loop "
                 f"({a.rounds} round(s); tok/s: median over rounds; percentiles: all rounds pooled)\n")
    lines.append("| server | C | ok/sent | err | agg tok/s | decode tok/s/req p50 | server-reported decode p50 "
                 "| TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | cached | load1 |")
    lines.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for c in concs:
        for name, _ in servers:
            s = get("fixed", c, name)
            if s:
                lines.append(
                    f"| {name} | {c} | {s['completed']}/{s['requests']} | {s['errors']} | {fmt(s['agg_tok_s'])} "
                    f"| {fmt(s['decode_tok_s_per_request']['p50'])} "
                    f"| {fmt(s['server_decode_tok_s_per_request']['p50'])} | {fmt(s['ttft_ms']['p50'], 0)} "
                    f"| {fmt(s['ttft_ms']['p99'], 0)} | {fmt(s['itl_ms']['p50'], 1)} | {fmt(s['itl_ms']['p99'], 1)} "
                    f"| {fmt(s['cached_tokens_mean'], 0)} | {s['load1_before']:.2f} |")
    if sconcs:
        lines.append(f"\n### Shared prefix: {a.shared_prefix}-token prefix + 16..31-token question, OUT={a.out_shared} "
                     "(prefix cached by one unmeasured request first; llama-server: cache_prompt on by default)\n")
        lines.append("| server | C | ok/sent | err | TTFT p50 ms | TTFT p99 ms | cached prompt tokens (mean) | load1 |")
        lines.append("|---|--:|--:|--:|--:|--:|--:|--:|")
        for c in sconcs:
            for name, _ in servers:
                s = get("shared", c, name)
                if s:
                    lines.append(
                        f"| {name} | {c} | {s['completed']}/{s['requests']} | {s['errors']} "
                        f"| {fmt(s['ttft_ms']['p50'], 0)} | {fmt(s['ttft_ms']['p99'], 0)} "
                        f"| {fmt(s['cached_tokens_mean'], 0)} | {s['load1_before']:.2f} |")

    goals = {}
    r8, l8 = get("fixed", 8, "realm"), get("fixed", 8, "llama.cpp")
    if r8 and l8 and r8["agg_tok_s"] and l8["agg_tok_s"]:
        goals["c8_agg_ratio"] = r8["agg_tok_s"] / l8["agg_tok_s"]
        goals["c8_ttft_p99_ms"] = {"realm": r8["ttft_ms"]["p99"], "llama.cpp": l8["ttft_ms"]["p99"]}
    r1 = get("fixed", 1, "realm")
    if r1 and a.single_stream_tgs:
        goals["c1_agg_vs_single_stream"] = r1["agg_tok_s"] / a.single_stream_tgs
        goals["c1_decode_vs_single_stream"] = (r1["decode_tok_s_per_request"]["p50"] or 0) / a.single_stream_tgs
        goals["c1_server_decode_vs_single_stream"] = (
            (r1["server_decode_tok_s_per_request"]["p50"] or 0) / a.single_stream_tgs)
    if goals:
        lines.append("\n### Goals\n")
        if "c8_agg_ratio" in goals:
            t = goals["c8_ttft_p99_ms"]
            lines.append(f"- C=8 aggregate tok/s realm / llama-server = {goals['c8_agg_ratio']:.2f}x (goal >= 1.5)")
            lines.append(f"- C=8 TTFT p99: realm {fmt(t['realm'], 0)} ms, llama-server {fmt(t['llama.cpp'], 0)} ms "
                         f"(goal: realm <= llama-server: {'met' if t['realm'] <= t['llama.cpp'] else 'not met'})")
        if "c1_agg_vs_single_stream" in goals:
            lines.append(f"- C=1: realm-server aggregate {fmt(r1['agg_tok_s'])} tok/s (prefill and TTFT included), "
                         f"decode {fmt(r1['decode_tok_s_per_request']['p50'])} tok/s per request; `realm bench` tg "
                         f"{a.single_stream_tgs:.1f} tok/s: {goals['c1_agg_vs_single_stream']:.2f}x / "
                         f"{goals['c1_decode_vs_single_stream']:.2f}x; the server's own decode timing "
                         f"{fmt(r1['server_decode_tok_s_per_request']['p50'])} tok/s: "
                         f"{goals['c1_server_decode_vs_single_stream']:.2f}x (goal >= 0.90)")
    table = "\n".join(lines)
    print(table)

    if a.json:
        result = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": sh(f"git -C {os.path.dirname(os.path.abspath(__file__))} rev-parse --short HEAD"),
            "cpu": cpu_model(),
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "model": a.model,
            "servers": {name: {"url": url, "command": cmds.get(name)} for name, url in servers},
            "params": {"in": a.n_in, "out": a.out, "conc": concs, "requests": a.requests or "max(8, 4*C)",
                       "rounds": a.rounds, "shared_conc": sconcs, "shared_prefix": a.shared_prefix,
                       "out_shared": a.out_shared, "prompt_offset": a.prompt_offset, "shared_requests": a.shared_requests or "max(16, 8*C)"},
            "corpus": {"source": "pydoc_data.topics, first 160000 chars",
                       "sha256": hashlib.sha256(text.encode()).hexdigest(),
                       "tokens": {name: len(t) for name, t in tok.items()}, "tokenizers_agree": agree},
            "single_stream_tg_tok_s": a.single_stream_tgs,
            "load_avg_start": load_start,
            "load_avg_end": load_end,
            "summary": summary,
            "goals": goals,
            "runs": [{k: (stats(v) if k in ("ttft_ms", "itl_ms", "decode_tok_s") else v) for k, v in r.items()}
                     for r in runs],
            "table_markdown": table,
        }
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\njson: {a.json}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
