"""Checks of a running realm-server container, through its published port (Python's standard
library only). Used by scripts/test-deploy.sh and scripts/bench-deploy.sh.

    python container_check.py health URL [TIMEOUT]          wait for /health 200; print seconds
    python container_check.py chat URL KEY                  a whole and a streamed chat completion
    python container_check.py traffic URL KEY LIMITED_KEY   requests for the dashboard: repeated
                                                            prompts (prefix cache), a rate-limited tenant
    python container_check.py drain URL KEY CONTAINER       SIGTERM mid-stream (podman kill): the
                                                            stream finishes, /health says draining,
                                                            a new request is 503, the container exits 0
    python container_check.py coldstart IMAGE MODEL_DIR MODEL_FILE RUNS
                                                            cold starts: `podman run -d` to /health
                                                            200 and to the first streamed token
"""

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

MSG = [{"role": "user", "content": "Name three colours."}]


def fail(msg: str):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def get(url: str, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def post(url: str, body: dict, key: str | None, timeout=120):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class Stream:
    """A streamed chat completion over http.client: yields each SSE data payload."""

    def __init__(self, url: str, key: str | None, body: dict):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.conn.request("POST", "/v1/chat/completions", json.dumps(body | {"stream": True}), headers)
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            fail(f"stream: HTTP {self.resp.status}: {self.resp.read()[:300]!r}")

    def events(self):
        for raw in self.resp:
            line = raw.decode().strip()
            if line.startswith("data: "):
                yield line[6:]


def health(url: str, timeout: float):
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        try:
            status, body = get(url + "/health", timeout=2)
            last = (status, body)
            if status == 200 and json.loads(body).get("status") == "ok":
                print(f"{time.monotonic() - t0:.2f}")
                return
        except OSError as e:
            last = e
        time.sleep(0.1)
    fail(f"/health not ok within {timeout} s (last: {last})")


def chat(url: str, key: str):
    status, body = post(url + "/v1/chat/completions", {"messages": MSG, "max_tokens": 16, "temperature": 0}, key)
    if status != 200:
        fail(f"chat completion: HTTP {status}: {body}")
    text = body["choices"][0]["message"]["content"]
    if not text or body["usage"]["completion_tokens"] <= 0:
        fail(f"chat completion: empty answer: {body}")
    print(f"chat completion ({body['model']}): {text!r}")
    pieces, finish = [], None
    for data in Stream(url, key, {"messages": MSG, "max_tokens": 16, "temperature": 0}).events():
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        for c in chunk.get("choices", []):
            pieces.append(c["delta"].get("content") or "")
            finish = c.get("finish_reason") or finish
    if "".join(pieces) != text or finish is None:
        fail(f"streamed answer {''.join(pieces)!r} (finish {finish}) differs from the whole one {text!r}")
    print(f"streamed chat completion: same answer, finish_reason {finish}")
    status, body = post(url + "/v1/chat/completions", {"messages": MSG, "max_tokens": 4}, "not-a-key")
    if status != 401:
        fail(f"a wrong key: expected 401, got {status}: {body}")


def traffic(url: str, key: str, limited_key: str):
    system = "You are a helpful assistant who answers briefly. " * 8
    for i in range(4):
        msgs = [{"role": "system", "content": system}, {"role": "user", "content": f"Say {i}."}]
        status, body = post(url + "/v1/chat/completions", {"messages": msgs, "max_tokens": 8}, key)
        if status != 200:
            fail(f"traffic: HTTP {status}: {body}")
    codes = [post(url + "/v1/chat/completions", {"messages": MSG, "max_tokens": 2}, limited_key)[0] for _ in range(5)]
    if 429 not in codes:
        fail(f"the rate-limited tenant was never refused: {codes}")
    print(f"traffic: 4 requests with a shared prefix; the limited tenant got {codes}")


def drain(url: str, key: str, container: str):
    body = {"messages": MSG, "max_tokens": 400, "ignore_eos": True, "temperature": 0}
    stream = Stream(url, key, body)
    tokens, finish, done, killed = 0, None, False, False
    seen = {}

    def during_drain():
        time.sleep(0.3)
        seen["health"] = get(url + "/health")
        seen["new"] = post(url + "/v1/chat/completions", {"messages": MSG, "max_tokens": 4}, key)[0]

    checker = threading.Thread(target=during_drain)
    for data in stream.events():
        if data == "[DONE]":
            done = True
            break
        chunk = json.loads(data)
        if "error" in chunk:
            fail(f"the stream ended with an error: {chunk}")
        for c in chunk.get("choices", []):
            if c["delta"].get("content"):
                tokens += 1
            finish = c.get("finish_reason") or finish
        if tokens == 5 and not killed:
            subprocess.run(["podman", "kill", "--signal", "TERM", container], check=True, capture_output=True)
            killed = True
            print(f"SIGTERM sent to {container} after {tokens} streamed tokens")
            checker.start()
    if not killed:
        fail("the stream ended before SIGTERM could be sent")
    checker.join()
    if not done or finish != "length":
        fail(f"the stream did not finish through the drain: [DONE] {done}, finish_reason {finish}, {tokens} tokens")
    print(f"the stream finished during the drain: {tokens} pieces of text, finish_reason {finish}, [DONE]")
    status, text = seen["health"]
    if status != 503 or "draining" not in text:
        fail(f"/health during the drain: {status} {text}")
    if seen["new"] != 503:
        fail(f"a new request during the drain: expected 503, got {seen['new']}")
    print("during the drain: /health 503 draining, a new request 503")
    r = subprocess.run(["podman", "wait", container], capture_output=True, text=True, timeout=60)
    code = r.stdout.strip()
    if code != "0":
        fail(f"the container exited {code!r}, not 0: {r.stderr}")
    print("the container exited 0")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def coldstart(image: str, model_dir: str, model_file: str, runs: int):
    """Each run: a new container; t0 just before `podman run -d`; /health polled every 5 ms; then
    one streamed chat (8 tokens, greedy) until its first piece of text."""
    import statistics

    rows = []
    for i in range(runs):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        name = f"realm-coldstart-{port}"
        t0 = time.monotonic()
        subprocess.run(["podman", "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
                        "-p", f"127.0.0.1:{port}:8080", "-v", f"{model_dir}:/models:ro",
                        "-e", f"REALM_MODEL=/models/{model_file}", image],
                       check=True, capture_output=True)
        t_run = time.monotonic() - t0
        try:
            while True:
                try:
                    if get(url + "/health", timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() - t0 > 120:
                    fail("no /health within 120 s")
                time.sleep(0.005)
            t_health = time.monotonic() - t0
            t_token = None
            for data in Stream(url, None, {"messages": MSG, "max_tokens": 8, "temperature": 0}).events():
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if any(c["delta"].get("content") for c in chunk.get("choices", [])):
                    t_token = time.monotonic() - t0
                    break
            if t_token is None:
                fail("the stream had no token")
        finally:
            subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True)
        rows.append((t_run, t_health, t_token))
        print(f"  run {i + 1}: podman run returned {t_run:.3f} s, /health 200 at {t_health:.3f} s, "
              f"first token at {t_token:.3f} s")
    med = [statistics.median(r[k] for r in rows) for k in range(3)]
    print(f"median of {runs}: podman run returned {med[0]:.3f} s, /health 200 {med[1]:.3f} s, first token {med[2]:.3f} s")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, url = sys.argv[1], sys.argv[2].rstrip("/")
    if cmd == "health":
        health(url, float(sys.argv[3]) if len(sys.argv) > 3 else 120)
    elif cmd == "chat":
        chat(url, sys.argv[3])
    elif cmd == "traffic":
        traffic(url, sys.argv[3], sys.argv[4])
    elif cmd == "drain":
        drain(url, sys.argv[3], sys.argv[4])
    elif cmd == "coldstart":
        coldstart(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit(__doc__)
