"""A server's life on the real model: /health while loading and draining, SIGTERM in the middle of
streams (in-flight requests finish within the drain timeout, the rest end with a final event,
new requests get 503, exit 0), and faults that must not hurt the others (clients that vanish
mid-stream at random, a client that never reads, slowloris headers, a non-streaming client that
gives up) — with no leaked sequences or KV blocks afterwards — and the cost of idle connections."""

import contextlib
import json
import random
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

import openai

from conftest import KEY, METRICS_KEY, MODEL, Server

MODEL_ID = MODEL.stem

MSG = [{"role": "user", "content": "Tell me a long story about the sea."}]


def health(url):
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as r:
            return r.status, json.loads(r.read())["status"]
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())["status"]


def test_drain_on_sigterm():
    s = Server(["--api-key", KEY, "--drain-timeout", "2", "--metrics-key", METRICS_KEY], "realm-server-drain")
    try:
        s.wait_ready()
        client = openai.OpenAI(base_url=s.url + "/v1", api_key=KEY, max_retries=0, timeout=60)
        results = {}

        def stream(name, max_tokens):
            text, finish = "", None
            for chunk in client.chat.completions.create(model=MODEL_ID, messages=MSG, max_tokens=max_tokens, temperature=0, stream=True):
                for c in chunk.choices:
                    text += c.delta.content or ""
                    finish = c.finish_reason or finish
            results[name] = (text, finish)

        short = threading.Thread(target=stream, args=("short", 40))
        long = threading.Thread(target=stream, args=("long", 4000))
        short.start()
        long.start()
        time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        assert health(s.url) == (503, "draining")
        try:
            client.chat.completions.create(model="x", messages=MSG, max_tokens=2)
            raise AssertionError("a request during the drain was served")
        except openai.APIStatusError as e:
            assert e.status_code == 503
            assert e.response.headers.get("retry-after")
        except openai.APIConnectionError:
            pass  # the listener may already be closed
        short.join(30)
        long.join(30)
        assert results["short"][1] == "length"
        # The long one outlived the drain timeout: cancelled, with its final event.
        assert results["long"][1] == "cancelled"
        assert s.proc.wait(30) == 0
    finally:
        s.stop()


def test_vanishing_clients_and_slow_readers_leak_nothing(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    rng = random.Random(1)
    errors = []

    def vanish(i):
        try:
            stream = client.chat.completions.create(model=MODEL_ID, messages=MSG, max_tokens=200, temperature=0.8, seed=i, stream=True)
            stop_after = rng.randint(1, 12)
            for n, _ in enumerate(stream):
                if n >= stop_after:
                    break
            stream.close()
        except openai.RateLimitError:
            pass
        except Exception as e:  # a 503 (queue full) is a defined answer; anything else is not
            if getattr(e, "status_code", None) != 503:
                errors.append(repr(e))

    # A client that sends a request and never reads: its socket fills, it costs only itself.
    never = socket.create_connection(("127.0.0.1", server.port))
    body = json.dumps({"messages": MSG, "max_tokens": 300, "stream": True}).encode()
    never.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    # Slowloris: headers that never end.
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    # A first round warms the allocator and commits the KV pool's pages (it keeps them); the
    # second, of 200, must then leave memory where the first did.
    warm = [threading.Thread(target=vanish, args=(i,)) for i in range(50)]
    for t in warm:
        t.start()
    for t in warm:
        t.join(120)
    base = rss_mib(server.proc.pid)
    threads = [threading.Thread(target=vanish, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    # Meanwhile an ordinary request is answered.
    r = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0)
    assert r.choices[0].message.content
    for t in threads:
        t.join(120)
    assert not errors, errors
    never.close()
    # The slowloris connection is closed by the server after --header-timeout (10 s).
    slow.settimeout(20)
    try:
        slow.recv(1024)  # returns b"" (closed) or a 408 before closing; a socket.timeout fails the test
    except ConnectionResetError:
        pass
    slow.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        m = server.metrics()
        if m["realm_num_requests_running"] == 0 and m["realm_kv_cache_usage_perc"] == 0 and m["realm_num_requests_waiting"] == 0:
            break
        time.sleep(0.1)
    assert m["realm_num_requests_running"] == 0, m
    assert m["realm_num_requests_waiting"] == 0, m
    assert m["realm_kv_cache_usage_perc"] == 0, m
    # Memory back at its baseline: nothing leaked per request.
    grown = rss_mib(server.proc.pid) - base
    assert grown < 24, f"{grown:.1f} MiB more after 200 vanishing clients"
    print(f"200 vanishing clients: {grown:+.1f} MiB RSS")


def rss_mib(pid) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_non_streaming_client_that_gives_up_frees_its_sequence(server):
    body = json.dumps({"messages": MSG, "max_tokens": 3000, "temperature": 0}).encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    deadline = time.time() + 10
    while server.metrics()["realm_num_requests_running"] == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert server.metrics()["realm_num_requests_running"] == 1
    s.close()
    t0 = time.time()
    while server.metrics()["realm_num_requests_running"] != 0 and time.time() - t0 < 5:
        time.sleep(0.02)
    # Within a step or two: the goal is 100 ms (llama.cpp's own test allows 2 s); the bound
    # here leaves room for a loaded CI machine and the metrics polling.
    took = time.time() - t0
    print(f"a non-streaming client that gave up: freed after {took * 1000:.0f} ms")
    assert took < 0.5
    assert server.metrics()["realm_kv_cache_usage_perc"] == 0


def test_a_thousand_idle_connections_cost_little(server):
    from websockets.sync.client import connect

    base = rss_mib(server.proc.pid)
    http = []
    for _ in range(500):
        c = socket.create_connection(("127.0.0.1", server.port))
        c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in c.recv(4096)
        http.append(c)  # kept alive, idle
    url = server.url.replace("http://", "ws://") + f"/v1/ws?api_key={KEY}"
    with contextlib.ExitStack() as stack:
        for _ in range(500):
            w = stack.enter_context(connect(url, subprotocols=["realm.v1"], open_timeout=30))
            assert json.loads(w.recv(timeout=30))["type"] == "hello"
        grown = rss_mib(server.proc.pid) - base
        m = server.metrics()
        assert m['realm_open_connections{protocol="ws"}'] >= 500
    for c in http:
        c.close()
    assert grown < 100, f"1,000 idle connections took {grown:.1f} MiB"
    print(f"1,000 idle connections: +{grown:.1f} MiB RSS")


def test_wgpu_backend_serves_the_same_api():
    s = Server(["--backend", "wgpu", "--api-key", KEY], "realm-server-wgpu")
    try:
        s.wait_ready(timeout=300)
        client = openai.OpenAI(base_url=s.url + "/v1", api_key=KEY, max_retries=0, timeout=300)
        r = client.completions.create(model=MODEL_ID, prompt="The capital of France is", max_tokens=8, temperature=0)
        assert "Paris" in r.choices[0].text and r.usage.completion_tokens == 8
        text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0, stream=True)
            if c.choices
        )
        assert text
    finally:
        assert s.stop() == 0, s.logs()


def test_a_full_queue_is_503_with_retry_after_and_cors_is_off_by_default():
    s = Server(["--api-key", KEY, "--max-running", "1", "--max-waiting", "1"], "realm-server-queue")
    try:
        s.wait_ready()
        client = openai.OpenAI(base_url=s.url + "/v1", api_key=KEY, max_retries=0, timeout=120)
        statuses = []

        def ask(i):
            try:
                client.chat.completions.create(model=MODEL_ID, messages=MSG, max_tokens=48, temperature=0)
                statuses.append(200)
            except openai.APIStatusError as e:
                statuses.append(e.status_code)
                assert e.status_code == 503 and int(e.response.headers["retry-after"]) >= 1
                assert e.body["code"] == "server_overloaded"

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert sorted(set(statuses)) == [200, 503], statuses
        # CORS is off unless --cors-origin is given; every answer carries a request id.
        req = urllib.request.Request(s.url + "/health", headers={"Origin": "http://evil.example", "X-Request-Id": "abc-123"})
        with urllib.request.urlopen(req) as r:
            assert "access-control-allow-origin" not in {k.lower() for k in r.headers}
            assert r.headers["x-request-id"] == "abc-123"
    finally:
        assert s.stop() == 0, s.logs()


def test_cors_when_asked():
    s = Server(["--cors-origin", "http://app.example"], "realm-server-cors")
    try:
        s.wait_ready()
        req = urllib.request.Request(
            s.url + "/v1/chat/completions", method="OPTIONS",
            headers={"Origin": "http://app.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type"},
        )
        with urllib.request.urlopen(req) as r:
            assert r.headers["access-control-allow-origin"] == "http://app.example"
    finally:
        assert s.stop() == 0, s.logs()
