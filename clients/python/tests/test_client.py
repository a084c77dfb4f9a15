"""The rest of the client: whole answers, errors by type, retries, and bad input (servers that
are gone, answer garbage, refuse the protocol or send oversized messages) -- never a hang."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
import websockets
from conftest import KEY, Server, free_port
from websockets.asyncio.server import serve

from realm_client import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    BadRequestError,
    Client,
    ConnectionClosedError,
    ContextLengthError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    ProtocolError,
    RateLimitError,
    ShuttingDownError,
)
from realm_client._async_client import AsyncStream
from realm_client._ws import AsyncConnection

MSG = [{"role": "user", "content": "Hi"}]


# ---- against the real server ------------------------------------------------------------------


def test_whole_answers_models_health(client: Client) -> None:
    assert client.health().ok and client.health().status == "ok"
    models = client.models.list()
    assert len(models.data) == 1 and models.data[0].max_model_len
    r = client.chat.completions.create(
        model=models.data[0].id, messages=MSG, max_tokens=4, n=2, seed=1, logprobs=True, top_logprobs=2
    )
    assert len(r.choices) == 2 and r.usage and r.usage.completion_tokens > 0
    assert r.choices[0].logprobs and len(r.choices[0].logprobs.content[0].top_logprobs) == 2
    assert r.timings[1].predicted_n > 0
    c = client.completions.create(prompt="1, 2, 3,", max_tokens=4, temperature=0, logprobs=1, stop=["7"])
    assert c.choices[0].text and c.choices[0].logprobs and c.choices[0].logprobs.tokens
    chunks = list(client.completions.create(prompt="1, 2, 3,", max_tokens=4, temperature=0, stream=True))
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == c.choices[0].text


def test_errors_are_typed_http(client: Client) -> None:
    with pytest.raises(BadRequestError) as e:
        client.chat.completions.create(messages=MSG, temperature=5)
    assert e.value.param == "temperature" and e.value.status == 400 and e.value.code == "invalid_request"
    with pytest.raises(NotFoundError) as e2:
        client.chat.completions.create(model="no-such-model", messages=MSG, stream=True)
    assert e2.value.code == "model_not_found"
    with pytest.raises(ContextLengthError) as e3:
        client.completions.create(prompt="hello " * 6000, max_tokens=2)
    assert e3.value.status == 400 and isinstance(e3.value, BadRequestError)
    with pytest.raises(PayloadTooLargeError):
        client.completions.create(prompt="x" * (5 << 20), max_tokens=1)


def test_errors_are_typed_ws(client: Client) -> None:
    with client.connect() as conn:
        with pytest.raises(BadRequestError) as e:
            conn.chat(MSG, temperature=5).result()
        assert e.value.param == "request.temperature"
        with pytest.raises(NotFoundError):
            conn.chat(MSG, model="nope").wait_created()
        with pytest.raises(PayloadTooLargeError):  # refused before sending: hello.max_message_bytes
            conn.complete("x" * (5 << 20))
        assert conn.chat(MSG, max_tokens=2).result().choices[0].finish_reason == "length"


def test_wrong_protocol_version_is_refused(server: Server) -> None:
    async def main() -> None:
        with pytest.raises(BadRequestError) as e:
            await AsyncConnection.open(
                server.url.replace("http", "ws") + "/v1/ws", KEY, timeout=10, subprotocol="realm.v0"
            )
        assert e.value.param == "sec-websocket-protocol"

    asyncio.run(main())


def test_async_errors_and_completions(server: Server) -> None:
    async def main() -> None:
        async with AsyncClient(server.url + "/v1", api_key=KEY, max_retries=0) as c:
            assert (await c.health()).ok
            assert (await c.models.list()).data
            r = await c.completions.create(prompt="Once", max_tokens=3, seed=1)
            assert r.choices[0].finish_reason == "length"
            with pytest.raises(BadRequestError) as e:
                await c.chat.completions.create(messages=MSG, n=100)
            assert e.value.param == "n"
            conn = await c.connect()
            try:
                with pytest.raises(BadRequestError):
                    s = await conn.chat(MSG, top_p=7)
                    async for _ in s:
                        pass
                assert await conn.ping("p") == "p"
            finally:
                await conn.close()
            assert conn.closed

    asyncio.run(main())


# ---- no server ---------------------------------------------------------------------------------


def test_server_gone_connection_error_and_retry_count() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    c = Client(url, timeout=5, max_retries=2)
    sleeps: list[float] = []
    c._sleep = sleeps.append
    t0 = time.monotonic()
    with pytest.raises(APIConnectionError):
        c.chat.completions.create(messages=MSG)
    assert len(sleeps) == 2  # refused before anything was sent: safe to retry
    with pytest.raises(APIConnectionError):
        Client(url, max_retries=0).connect()
    with pytest.raises(APIConnectionError):
        Client(url, max_retries=0).health()
    assert time.monotonic() - t0 < 5


# ---- a scripted HTTP server ------------------------------------------------------------------


class Scripted:
    """An HTTP server answering each request with the next scripted (status, headers, body)."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.script = list(script)
        self.hits = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _answer(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                self.rfile.read(n)
                outer.hits += 1
                status, headers, body = outer.script.pop(0) if outer.script else (500, {}, b"")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def err_body(code: str, msg: str = "x") -> bytes:
    return json.dumps({"error": {"message": msg, "type": "t", "param": None, "code": code}}).encode()


OK_CHAT = json.dumps({"id": "c", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}).encode()


@pytest.fixture
def scripted() -> Iterator[Any]:
    made: list[Scripted] = []

    def make(script: list[tuple[int, dict[str, str], bytes]]) -> Scripted:
        made.append(Scripted(script))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_retries_503_and_429_honour_retry_after(scripted: Any) -> None:
    s = scripted(
        [
            (503, {"Retry-After": "0.01"}, err_body("server_overloaded")),
            (429, {"Retry-After": "0.02"}, err_body("rate_limit_exceeded")),
            (200, {"Content-Type": "application/json"}, OK_CHAT),
        ]
    )
    c = Client(s.url, max_retries=2, timeout=5)
    sleeps: list[float] = []
    c._sleep = sleeps.append
    assert c.chat.completions.create(messages=MSG).choices[0].message.content == "hi"
    assert s.hits == 3 and sleeps == [0.01, 0.02]


def test_no_retry_when_not_safe_or_exhausted(scripted: Any) -> None:
    s = scripted([(400, {}, err_body("invalid_request"))])
    with pytest.raises(BadRequestError):
        Client(s.url, max_retries=3).chat.completions.create(messages=MSG)
    assert s.hits == 1
    s2 = scripted([(503, {"Retry-After": "0"}, err_body("shutting_down"))] * 3)
    with pytest.raises(ShuttingDownError) as e:
        Client(s2.url, max_retries=1).chat.completions.create(messages=MSG)
    assert s2.hits == 2 and e.value.retry_after == 0
    s3 = scripted([(429, {"Retry-After": "3600"}, err_body("rate_limit_exceeded"))])  # too long to wait
    with pytest.raises(RateLimitError) as e3:
        Client(s3.url, max_retries=5).chat.completions.create(messages=MSG)
    assert s3.hits == 1 and e3.value.retry_after == 3600
    # a stream that started and then broke is never retried
    s4 = scripted([(200, {"Content-Type": "text/event-stream"}, b'data: {"id":"a","choices":[]}\n\n')] * 2)
    with pytest.raises(APIConnectionError):
        list(Client(s4.url, max_retries=3).chat.completions.create(messages=MSG, stream=True))
    assert s4.hits == 1


def test_garbage_answers_are_typed(scripted: Any) -> None:
    s = scripted(
        [
            (200, {"Content-Type": "application/json"}, b"not json"),
            (200, {"Content-Type": "text/event-stream"}, b"data: {broken\n\n"),
            (200, {"Content-Type": "text/event-stream"}, b'data: {"error":{"message":"boom","code":"internal"}}\n\n'),
            (502, {}, b"<html>bad gateway</html>"),
            (503, {"Retry-After": "0"}, err_body("server_overloaded")),
        ]
    )
    c = Client(s.url, max_retries=0, timeout=5)
    with pytest.raises(ProtocolError):
        c.chat.completions.create(messages=MSG)
    with pytest.raises(ProtocolError):
        list(c.chat.completions.create(messages=MSG, stream=True))
    from realm_client import InternalServerError

    with pytest.raises(InternalServerError):
        list(c.chat.completions.create(messages=MSG, stream=True))
    with pytest.raises(APIConnectionError):
        c.chat.completions.create(messages=MSG)
    with pytest.raises(OverloadedError):
        c.chat.completions.create(messages=MSG)


def raw_server(behaviour: str) -> tuple[str, socket.socket]:
    """A TCP server that answers garbage bytes, or nothing at all."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def run() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            if behaviour == "garbage":
                conn.recv(65536)
                conn.sendall(b"\x00\xffgarbage\r\n\r\n")
                conn.close()
            # "silent": keep the connection open, say nothing

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{srv.getsockname()[1]}", srv


def test_garbage_bytes_and_silence_never_hang() -> None:
    url, srv = raw_server("garbage")
    try:
        c = Client(url, max_retries=0, timeout=3)
        with pytest.raises(APIConnectionError):
            c.chat.completions.create(messages=MSG)
        with pytest.raises(APIConnectionError):
            c.connect()
    finally:
        srv.close()
    url, srv = raw_server("silent")
    try:
        c = Client(url, max_retries=0, timeout=1)
        t0 = time.monotonic()
        with pytest.raises(APITimeoutError):
            c.chat.completions.create(messages=MSG)
        with pytest.raises(APITimeoutError):
            c.connect()
        assert time.monotonic() - t0 < 10
    finally:
        srv.close()


# ---- scripted WebSocket servers -----------------------------------------------------------------

HELLO = {"type": "hello", "protocol": "realm.v1", "server": "fake", "model": "m", "max_in_flight": 4,
         "max_message_bytes": 1 << 20, "idle_timeout_s": 300}


def run_ws(handler: Any, client_fn: Any, **serve_kw: Any) -> None:
    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, **serve_kw) as server:
            port = list(server.sockets)[0].getsockname()[1]
            await asyncio.wait_for(client_fn(f"http://127.0.0.1:{port}"), 15)

    asyncio.run(main())


def test_ws_garbage_frame_fails_in_flight_requests() -> None:
    async def handler(ws: Any) -> None:
        await ws.send(json.dumps(HELLO))
        msg = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "created", "id": msg["id"], "model": "m", "prompt_tokens": 1}))
        await ws.send("{garbage")
        await ws.wait_closed()

    async def client_fn(url: str) -> None:
        async with AsyncClient(url, max_retries=0, timeout=5) as c:
            async with c.connect() as conn:
                s = await conn.chat(MSG)
                with pytest.raises(ProtocolError):
                    await s.result()
                with pytest.raises(ProtocolError):
                    await conn.chat(MSG)

    run_ws(handler, client_fn)


def test_ws_other_protocol_version_and_no_hello() -> None:
    async def v2(ws: Any) -> None:
        await ws.send(json.dumps({**HELLO, "protocol": "realm.v2"}))
        await ws.wait_closed()

    async def check_v2(url: str) -> None:
        with pytest.raises(ProtocolError, match="realm.v2"):
            await AsyncClient(url, max_retries=0).connect()

    run_ws(v2, check_v2)

    async def silent(ws: Any) -> None:
        await ws.wait_closed()

    async def check_silent(url: str) -> None:
        with pytest.raises(APITimeoutError):
            await AsyncClient(url, max_retries=0, timeout=1).connect()

    run_ws(silent, check_silent)


def test_ws_oversized_message_closes_with_1009() -> None:
    async def handler(ws: Any) -> None:
        await ws.send(json.dumps(HELLO))
        msg = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "delta", "id": msg["id"], "index": 0, "text": "x" * 200_000, "tokens": []}))
        await ws.wait_closed()

    async def client_fn(url: str) -> None:
        async with AsyncClient(url, max_retries=0, timeout=5).connect(max_message_bytes=100_000) as conn:
            s = await conn.chat(MSG)
            with pytest.raises(ConnectionClosedError) as e:
                await s.result()
            assert e.value.close_code == 1009

    run_ws(handler, client_fn)


def test_ws_server_close_code_reaches_every_request_sync() -> None:
    async def handler(ws: Any) -> None:
        await ws.send(json.dumps(HELLO))
        for _ in range(2):
            await ws.recv()
        await ws.close(1001, "going away")

    async def client_fn(url: str) -> None:
        def sync_part() -> None:
            with Client(url, max_retries=0, timeout=5).connect() as conn:
                a, b = conn.chat(MSG), conn.chat(MSG)
                for s in (a, b):
                    with pytest.raises(ConnectionClosedError) as e:
                        s.result()
                    assert e.value.close_code == 1001

        await asyncio.to_thread(sync_part)

    run_ws(handler, client_fn)


def test_ws_handshake_503_is_retried_then_typed() -> None:
    hits = []

    def refuse(conn: Any, request: Any) -> Any:
        hits.append(1)
        r = conn.respond(503, json.dumps({"error": {"message": "busy", "type": "server_error", "param": None,
                                                     "code": "server_overloaded"}}))
        r.headers["Retry-After"] = "0"
        return r

    async def noop(ws: Any) -> None:
        pass

    async def client_fn(url: str) -> None:
        with pytest.raises(OverloadedError) as e:
            await AsyncClient(url, max_retries=2).connect()
        assert e.value.retry_after == 0 and len(hits) == 3

    run_ws(noop, client_fn, process_request=refuse)


def test_async_stream_close_closes_response(scripted: Any) -> None:
    body = b"".join(b'data: {"id":"a","choices":[{"index":0,"delta":{"content":"x"}}]}\n\n' for _ in range(3))
    s = scripted([(200, {"Content-Type": "text/event-stream"}, body + b"data: [DONE]\n\n")])

    async def main() -> None:
        async with AsyncClient(s.url, max_retries=0) as c:
            async with await c.chat.completions.create(messages=MSG, stream=True) as st:
                assert isinstance(st, AsyncStream)
                got = [ch.choices[0].delta.content async for ch in st]
            assert got == ["x"] * 3 and st.closed

    asyncio.run(main())
    assert websockets.__version__


def test_structured_output(client: Client) -> None:
    """response_format over HTTP (whole and streamed) and realm.v1, validated by jsonschema."""
    import jsonschema

    schema = {
        "type": "object",
        "properties": {"colour": {"enum": ["red", "green", "blue"]}, "count": {"type": "integer", "minimum": 1, "maximum": 9}},
        "required": ["colour", "count"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "pick", "schema": schema}}
    kw: dict[str, Any] = dict(messages=MSG, max_tokens=40, seed=4, temperature=0.7, response_format=fmt)
    whole = client.chat.completions.create(**kw).choices[0].message.content
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(stream=True, **kw) if c.choices)
    assert streamed == whole
    jsonschema.validate(json.loads(whole), schema)
    with client.connect() as conn:
        assert conn.chat(MSG, max_tokens=40, seed=4, temperature=0.7, response_format=fmt).result().text == whole
        with pytest.raises(BadRequestError) as e:
            conn.chat(MSG, response_format={"type": "json_schema", "json_schema": {"schema": {"type": "nope"}}}).result()
        assert e.value.param == "request.response_format.json_schema.schema"
