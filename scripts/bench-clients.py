#!/usr/bin/env python3
"""Client-overhead benchmark (issue 14) for the Python client, realm_client, against raw readers.

A benchmark program, not a test (scripts/test.sh does not run it). Goal of issue 14: "a client
adds <= 1 ms p50 to time to first token and no measurable cost to token throughput over a raw
WebSocket/SSE reader".

It starts one release realm-server on a free loopback port (or uses --url), waits for /health,
then measures four ways of streaming the same chat request, one at a time (never two at once):

  raw-sse     http.client on one keep-alive connection: POST /v1/chat/completions stream=true,
              read the body line by line, json.loads each `data:` line (standard library only)
  client-sse  realm_client.Client().chat.completions.create(..., stream=True), iterate chunks
  raw-ws      websockets.sync.client.connect(ws://.../v1/ws, subprotocols=[realm.v1]): send a
              `chat` message, json.loads each message until `done`
  client-ws   realm_client.Client().connect() then conn.chat(...), iterate its Deltas

Every request: greedy (temperature 0, seed 1), `ignore_eos: true` (extra_body for the client, HTTP and WebSocket),
max_tokens OUT (64), n 1; a short chat prompt that differs for every request of the whole run (a
global counter, zero-padded to 5 digits so every prompt has the same length in tokens, near
the start of the user message), so that no method gets another's prompt from
the prefix cache: each request reuses only the chat template's shared head, the same for all.

Per round, methods run in a rotated order (round r starts at method r mod 4); each method opens
its connection (HTTP keep-alive connection, client, WebSocket), sends one unmeasured warm-up
request, then N (20) measured requests back to back, then closes it.

Measured per request: TTFT = just before the request is sent (the raw readers' write, the
client's create()/chat() call) -> the first chunk/delta with non-empty text; decode tok/s =
(k - 1) / (t_last - t_first) over the k chunks/deltas with non-empty text (one token each here);
and the server's own `timings` of the request (ttft_ms, predicted_per_second) from its last chunk
/ `done`, so that "TTFT seen - server ttft_ms" (the transport + client part of the TTFT, with the
engine's variation taken out) can be compared too; and this process's CPU time for the request
(time.process_time(), all its threads: what the client takes from cores the engine shares).
Percentiles are over all rounds pooled; the
decode tok/s of a method is the median of its per-request values. The engine's own TTFT and speed
move between rounds on a shared machine by more than the differences sought (two states, ~26 and
~36 ms TTFT, on the 2-core VM), so the verdict uses the measures that take the engine out: the
client − raw difference of the p50 of (TTFT seen - server ttft_ms), and of the reader's pace
(decode tok/s seen / the server's predicted_per_second of the same request); the pooled and
per-round differences of plain TTFT and tok/s are printed beside them.

Usage: scripts/bench-clients.py [--url http://127.0.0.1:PORT] [--server-bin target/release/realm-server]
         [--model PATH] [--threads 2] [--rounds 5] [--requests 20] [--out 64] [--json PATH]
Run it with the venv that has httpx2 and websockets (~/.cache/realm/venv/bin/python), or through
scripts/bench-clients.sh. Prints a markdown table; --json writes every sample.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import sys
import time
import urllib.request
from urllib.parse import urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python", "src"))

import websockets.sync.client  # noqa: E402

import realm_client  # noqa: E402

METHODS = ["raw-sse", "client-sse", "raw-ws", "client-ws"]
PAIRS = [("client-sse", "raw-sse"), ("client-ws", "raw-ws")]

_counter = 0


def messages():
    global _counter
    _counter += 1
    return [{"role": "user", "content": f"Request {_counter:05d}: write a short story about a fox."}]


def params(out):
    return {"max_tokens": out, "temperature": 0, "seed": 1, "n": 1}


class Sample:
    __slots__ = ("ttft", "tps", "tokens", "server_ttft", "server_tps", "cached", "cpu_ms")

    def __init__(self, t0, times, timings, cached):
        self.cpu_ms = float("nan")  # set by the caller: this process's CPU time (all threads)
        self.ttft = (times[0] - t0) * 1000.0 if times else float("nan")
        k = len(times)
        self.tps = (k - 1) / (times[-1] - times[0]) if k > 1 and times[-1] > times[0] else float("nan")
        self.tokens = k
        self.server_ttft = float(timings.get("ttft_ms", "nan")) if timings else float("nan")
        self.server_tps = float(timings.get("predicted_per_second", "nan")) if timings else float("nan")
        self.cached = cached

    def as_dict(self):
        return {s: getattr(self, s) for s in self.__slots__}


# ---- the four methods: each is a context manager factory returning a request function ---------


class RawSSE:
    def __init__(self, url, out):
        u = urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        self.out = out

    def request(self):
        body = dict(params(self.out), messages=messages(), stream=True, ignore_eos=True,
                    stream_options={"include_usage": True})
        data = json.dumps(body).encode()
        times = []
        timings = None
        cached = None
        t0 = time.perf_counter()
        self.conn.request("POST", "/v1/chat/completions", body=data,
                          headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
        resp = self.conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"raw-sse: HTTP {resp.status}: {resp.read()[:200]!r}")
        while True:
            line = resp.readline()
            if not line:
                break
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                break
            obj = json.loads(payload)
            ch = obj.get("choices")
            if ch:
                c = ch[0]
                if c.get("delta", {}).get("content"):
                    times.append(time.perf_counter())
                if c.get("timings"):
                    timings = c["timings"]
            if obj.get("timings"):
                timings = obj["timings"]
            if obj.get("usage"):
                cached = (obj["usage"].get("prompt_tokens_details") or {}).get("cached_tokens")
        resp.read()  # drain what is left (the chunked terminator) so the connection is reusable
        return Sample(t0, times, timings, cached)

    def close(self):
        self.conn.close()


class ClientSSE:
    def __init__(self, url, out):
        self.client = realm_client.Client(base_url=url)
        self.out = out

    def request(self):
        times = []
        timings = None
        cached = None
        msgs = messages()
        t0 = time.perf_counter()
        with self.client.chat.completions.create(
            messages=msgs, stream=True, stream_options={"include_usage": True},
            extra_body={"ignore_eos": True}, **params(self.out)
        ) as stream:
            for chunk in stream:
                if chunk.choices:
                    if chunk.choices[0].delta.content:
                        times.append(time.perf_counter())
                if chunk.timings is not None:
                    timings = chunk.timings
                if chunk.usage is not None and chunk.usage.prompt_tokens_details is not None:
                    cached = chunk.usage.prompt_tokens_details.cached_tokens
        if timings is not None:
            timings = {"ttft_ms": timings.ttft_ms, "predicted_per_second": timings.predicted_per_second}
        return Sample(t0, times, timings, cached)

    def close(self):
        self.client.close()


def ws_url(url):
    u = urlsplit(url)
    return f"ws://{u.hostname}:{u.port}/v1/ws"


class RawWS:
    def __init__(self, url, out):
        self._cm = websockets.sync.client.connect(ws_url(url), subprotocols=["realm.v1"], max_size=16 << 20)
        self.ws = self._cm.__enter__()
        hello = json.loads(self.ws.recv())
        assert hello["type"] == "hello", hello
        self.out = out
        self.n = 0

    def request(self):
        self.n += 1
        rid = f"r{self.n}"
        req = dict(params(self.out), messages=messages(), ignore_eos=True)
        msg = json.dumps({"type": "chat", "id": rid, "request": req})
        times = []
        timings = None
        cached = None
        t0 = time.perf_counter()
        self.ws.send(msg)
        while True:
            obj = json.loads(self.ws.recv())
            t = obj.get("type")
            if t == "delta":
                if obj.get("text"):
                    times.append(time.perf_counter())
            elif t == "done":
                timings = obj["choices"][0].get("timings")
                cached = ((obj.get("usage") or {}).get("prompt_tokens_details") or {}).get("cached_tokens")
                break
            elif t == "error":
                raise RuntimeError(f"raw-ws: {obj}")
        return Sample(t0, times, timings, cached)

    def close(self):
        self._cm.__exit__(None, None, None)


class ClientWS:
    def __init__(self, url, out):
        self.client = realm_client.Client(base_url=url)
        self.conn = self.client.connect()
        self.out = out

    def request(self):
        times = []
        msgs = messages()
        t0 = time.perf_counter()
        stream = self.conn.chat(msgs, extra_body={"ignore_eos": True}, **params(self.out))
        for d in stream:
            if d.text:
                times.append(time.perf_counter())
        done = stream.done
        timings = None
        cached = None
        if done is not None:
            tm = done.choices[0].timings
            if tm is not None:
                timings = {"ttft_ms": tm.ttft_ms, "predicted_per_second": tm.predicted_per_second}
            if done.usage is not None and done.usage.prompt_tokens_details is not None:
                cached = done.usage.prompt_tokens_details.cached_tokens
        return Sample(t0, times, timings, cached)

    def close(self):
        self.conn.close()
        self.client.close()


FACTORIES = {"raw-sse": RawSSE, "client-sse": ClientSSE, "raw-ws": RawWS, "client-ws": ClientWS}


# ---- statistics and the server ----------------------------------------------------------------


def pct(xs, p):
    xs = sorted(x for x in xs if x == x)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def med(xs):
    return pct(xs, 50)


def loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_health(url, proc, log, limit_s=120):
    deadline = time.time() + limit_s
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"realm-server exited ({proc.returncode}); its log: {log}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"no /health 200 from {url} after {limit_s} s; log: {log}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="use a running server instead of starting one")
    ap.add_argument("--server-bin", default=os.path.join(ROOT, "target", "release", "realm-server"))
    ap.add_argument("--model", default=os.path.expanduser(
        os.path.join(os.environ.get("REALM_CACHE_DIR", "~/.cache/realm"), "models", "SmolLM2-135M-Instruct.Q4_1.gguf")))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--out", type=int, default=64)
    ap.add_argument("--json", default=os.environ.get("BENCH_JSON"))
    a = ap.parse_args()

    proc = None
    log = None
    cmd = None
    if a.url:
        url = a.url.rstrip("/")
    else:
        port = free_port()
        cmd = [a.server_bin, "-m", a.model, "-t", str(a.threads), "--host", "127.0.0.1", "--port", str(port)]
        log = os.path.join(tempfile.gettempdir(), f"bench-clients-realm-server-{os.getpid()}.log")
        proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
    try:
        wait_health(url, proc, log)
        return run(a, url, cmd)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run(a, url, cmd):
    start = datetime.datetime.now(datetime.timezone.utc)
    la0 = loadavg()
    print(f"server: {' '.join(cmd) if cmd else url}", file=sys.stderr)
    print(f"start {start:%Y-%m-%d %H:%M:%S} UTC, load average {la0[0]:.2f} {la0[1]:.2f} {la0[2]:.2f}", file=sys.stderr)
    samples = {m: [] for m in METHODS}
    per_round = []
    for r in range(a.rounds):
        order = METHODS[r % 4:] + METHODS[:r % 4]
        rr = {}
        for m in order:
            h = FACTORIES[m](url, a.out)
            try:
                h.request()  # warm-up: opens the connection, not measured
                got = []
                for _ in range(a.requests):
                    c0 = time.process_time()
                    smp = h.request()
                    smp.cpu_ms = (time.process_time() - c0) * 1000.0
                    got.append(smp)
            finally:
                h.close()
            bad = [s for s in got if s.tokens != a.out]
            if bad:
                print(f"warning: {m}: {len(bad)} requests with != {a.out} text chunks "
                      f"({sorted({s.tokens for s in bad})})", file=sys.stderr)
            samples[m] += got
            rr[m] = {"ttft_p50": med([s.ttft for s in got]), "tps_p50": med([s.tps for s in got])}
        per_round.append(rr)
        la = loadavg()
        print(f"round {r + 1}/{a.rounds} (order {', '.join(order)}), load {la[0]:.2f}: " +
              "; ".join(f"{m} TTFT {rr[m]['ttft_p50']:.2f} ms, {rr[m]['tps_p50']:.1f} tok/s" for m in METHODS),
              file=sys.stderr)
    end = datetime.datetime.now(datetime.timezone.utc)
    la1 = loadavg()

    stats = {}
    for m in METHODS:
        ss = samples[m]
        stats[m] = {
            "n": len(ss),
            "ttft_p50": med([s.ttft for s in ss]),
            "ttft_p90": pct([s.ttft for s in ss], 90),
            "tps_p50": med([s.tps for s in ss]),
            "server_ttft_p50": med([s.server_ttft for s in ss]),
            "resid_p50": med([s.ttft - s.server_ttft for s in ss]),
            "server_tps_p50": med([s.server_tps for s in ss]),
            "pace_p50": med([s.tps / s.server_tps for s in ss]),
            "cpu_ms_p50": med([s.cpu_ms for s in ss]),
            "cached_p50": med([s.cached for s in ss if s.cached is not None]),
        }

    print(f"\nCommand: {' '.join(sys.argv)}; {start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC; load average "
          f"{la0[0]:.2f} -> {la1[0]:.2f}; rounds {a.rounds} x {a.requests} requests per method, out {a.out}\n")
    print("| method | n | TTFT p50 ms | TTFT p90 ms | TTFT − server ttft_ms, p50 | decode tok/s (p50) | server decode tok/s (p50) | decode / server's, p50 | client CPU ms/request (p50) | cached prompt tok (p50) |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for m in METHODS:
        s = stats[m]
        print(f"| {m} | {s['n']} | {s['ttft_p50']:.2f} | {s['ttft_p90']:.2f} | {s['resid_p50']:.2f} | "
              f"{s['tps_p50']:.1f} | {s['server_tps_p50']:.1f} | {s['pace_p50']:.4f} | {s['cpu_ms_p50']:.1f} | {s['cached_p50']:.0f} |")
    print()
    print("| client − raw | TTFT p50 ms (pooled) | TTFT p50 ms (median of rounds) | (TTFT − server) p50 ms | "
          "decode tok/s % (pooled) | decode tok/s % (median of rounds) | decode / server's | CPU ms/request |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    goals = {}
    for c, r in PAIRS:
        rd = [pr[c]["ttft_p50"] - pr[r]["ttft_p50"] for pr in per_round]
        rt = [(pr[c]["tps_p50"] / pr[r]["tps_p50"] - 1) * 100 for pr in per_round]
        g = goals[c] = {
            "d_ttft_ms": stats[c]["ttft_p50"] - stats[r]["ttft_p50"],
            "d_ttft_ms_rounds": med(rd),
            "d_resid_ms": stats[c]["resid_p50"] - stats[r]["resid_p50"],
            "d_tps_pct": (stats[c]["tps_p50"] / stats[r]["tps_p50"] - 1) * 100,
            "d_tps_pct_rounds": med(rt),
            "d_pace": stats[c]["pace_p50"] - stats[r]["pace_p50"],
            "d_cpu_ms": stats[c]["cpu_ms_p50"] - stats[r]["cpu_ms_p50"],
            "round_d_ttft_ms": rd,
            "round_d_tps_pct": rt,
        }
        print(f"| {c} − {r} | {g['d_ttft_ms']:+.2f} | {g['d_ttft_ms_rounds']:+.2f} | {g['d_resid_ms']:+.2f} | "
              f"{g['d_tps_pct']:+.2f} | {g['d_tps_pct_rounds']:+.2f} | {g['d_pace']:+.4f} | {g['d_cpu_ms']:+.1f} |")
    print()
    for c, r in PAIRS:
        g = goals[c]
        print(f"{c} − {r} per round: TTFT p50 ms {', '.join(f'{x:+.2f}' for x in g['round_d_ttft_ms'])}; "
              f"decode tok/s % {', '.join(f'{x:+.1f}' for x in g['round_d_tps_pct'])}")
    print()
    # The engine's own TTFT and speed move by ~10 ms / ~8% between rounds on a shared machine, so
    # the verdict uses the measures that take the engine out: the transport + client part of the
    # TTFT (TTFT seen - the server's ttft_ms of the same request) and the reader's pace (decode
    # tok/s seen / the server's predicted_per_second of the same request).
    for c, r in PAIRS:
        g = goals[c]
        print(f"{c}: TTFT (seen - server's) p50 {g['d_resid_ms']:+.2f} ms over {r} -> "
              f"{'met' if g['d_resid_ms'] <= 1.0 else 'NOT met'} (<= 1 ms); reader pace {g['d_pace']:+.4f} "
              f"(decode tok/s pooled {g['d_tps_pct']:+.2f}%, median of rounds {g['d_tps_pct_rounds']:+.2f}%); "
              f"CPU {g['d_cpu_ms']:+.1f} ms per {a.out}-token request")

    if a.json:
        with open(a.json, "w") as f:
            json.dump({"start_utc": start.isoformat(), "end_utc": end.isoformat(), "load_before": la0,
                       "load_after": la1, "server_cmd": cmd, "args": vars(a), "stats": stats,
                       "diffs": goals, "per_round": per_round,
                       "samples": {m: [s.as_dict() for s in samples[m]] for m in METHODS}}, f, indent=1)
        print(f"JSON: {a.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
