"""clients/SCENARIOS.md, S1..S6, against the real realm-server on the real model."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from conftest import KEY, LIMITED_KEY, OwnServer, Server, server_args

from realm_client import (
    APIConnectionError,
    AsyncClient,
    AuthenticationError,
    Client,
    ConnectionClosedError,
    RateLimitError,
)

MSG = [{"role": "user", "content": "Name three colours."}]
LONG = {"ignore_eos": True}


# S1 -- a streamed chat answer equals the server's non-streamed answer for the same seed.
def test_S1_stream_equals_whole_answer_sync(client: Client) -> None:
    whole = client.chat.completions.create(model="", messages=MSG, max_tokens=24, seed=7, temperature=0.7)
    text, finish, timings, usage = "", None, None, None
    with client.chat.completions.create(
        messages=MSG, max_tokens=24, seed=7, temperature=0.7, stream=True, stream_options={"include_usage": True}
    ) as stream:
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
                timings = chunk.timings or timings
            else:
                usage = chunk.usage
    assert text == whole.choices[0].message.content and text
    assert finish == whole.choices[0].finish_reason
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert timings is not None and timings.predicted_n == whole.timings[0].predicted_n
    # and over realm.v1
    with client.connect() as conn:
        res = conn.chat(MSG, max_tokens=24, seed=7, temperature=0.7).result()
    assert res.text == text and res.choices[0].finish_reason == finish


def test_S1_stream_equals_whole_answer_async(server: Server) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, api_key=KEY, timeout=60, max_retries=0) as c:
            whole = await c.chat.completions.create(messages=MSG, max_tokens=24, seed=8)
            stream = await c.chat.completions.create(messages=MSG, max_tokens=24, seed=8, stream=True)
            text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
            assert text == whole.choices[0].message.content
            async with c.connect() as conn:
                s = await conn.chat(MSG, max_tokens=24, seed=8)
                assert "".join([d.text async for d in s]) == text
                assert s.done is not None and s.done.choices[0].finish_reason == whole.choices[0].finish_reason

    asyncio.run(main())


# S2 -- three requests at once on one connection, each answered in full and as if alone.
def test_S2_three_concurrent_requests_on_one_connection(client: Client) -> None:
    prompts = ["Name three colours.", "Count to five.", "Say hi."]
    alone = [
        client.chat.completions.create(messages=[{"role": "user", "content": p}], max_tokens=16, seed=3)
        .choices[0]
        .message.content
        for p in prompts
    ]
    with client.connect() as conn:
        streams = [conn.chat([{"role": "user", "content": p}], max_tokens=16, seed=3) for p in prompts]
        assert len({s.id for s in streams}) == 3
        assert conn.in_flight == 3
        results = [s.result() for s in streams]
    assert [r.text for r in results] == alone
    assert all(r.usage is not None and r.usage.completion_tokens > 0 for r in results)


def test_S2_three_concurrent_requests_async(server: Server) -> None:
    async def main() -> list[str]:
        async with AsyncClient(server.url, api_key=KEY, timeout=60, max_retries=0) as c:
            async with c.connect() as conn:
                streams = [await conn.chat(MSG, max_tokens=12, seed=s) for s in (1, 2, 3)]
                created = await asyncio.gather(*(s.wait_created() for s in streams))
                assert all(cr.prompt_tokens > 0 for cr in created)
                results = await asyncio.gather(*(s.result() for s in streams))
                return [r.text for r in results]

    texts = asyncio.run(main())
    assert len(texts) == 3 and all(texts)


# S3 -- cancelling mid-stream frees the request on the server (realm_num_requests_running).
def test_S3_cancel_ws_running_count_drops(server: Server, client: Client) -> None:
    assert server.wait_running(lambda n: n == 0) == 0
    with client.connect() as conn:
        s = conn.chat(MSG, max_tokens=2000, extra_body=LONG)
        it = iter(s)
        for _ in range(3):
            next(it)
        assert server.running() >= 1
        s.cancel()
        res = s.result()
        assert res.choices[0].finish_reason == "cancelled"
        assert server.wait_running(lambda n: n == 0) == 0
        # breaking out of a loop cancels too
        s2 = conn.chat(MSG, max_tokens=2000, extra_body=LONG)
        for i, _ in enumerate(s2):
            if i == 2:
                break
        assert server.wait_running(lambda n: n == 0) == 0
        assert conn.ping("still-open") == "still-open"


def test_S3_cancel_sse_running_count_drops(server: Server, client: Client) -> None:
    assert server.wait_running(lambda n: n == 0) == 0
    stream = client.chat.completions.create(messages=MSG, max_tokens=2000, extra_body=LONG, stream=True)
    for i, _ in enumerate(stream):
        if i == 3:
            assert server.running() >= 1
            break  # leaving the loop closes the response: the server cancels
    assert stream.closed
    assert server.wait_running(lambda n: n == 0) == 0


def test_S3_cancel_async_task(server: Server) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, api_key=KEY, timeout=60, max_retries=0) as c:
            got = asyncio.Event()

            async def consume() -> None:
                stream = await c.chat.completions.create(messages=MSG, max_tokens=2000, extra_body=LONG, stream=True)
                n = 0
                async for _ in stream:
                    n += 1
                    if n == 4:
                        got.set()

            task = asyncio.create_task(consume())
            await got.wait()
            assert await asyncio.to_thread(server.running) >= 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await asyncio.to_thread(server.wait_running, lambda n: n == 0) == 0
            async with c.connect() as conn:
                s = await conn.chat(MSG, max_tokens=2000, extra_body=LONG)
                async for _ in s:
                    break
                await s.cancel()
                assert (await s.result()).choices[0].finish_reason == "cancelled"
            assert await asyncio.to_thread(server.wait_running, lambda n: n == 0) == 0

    asyncio.run(main())


# S4 -- a wrong key is the authentication error type (HTTP and the WebSocket handshake).
def test_S4_wrong_key_is_authentication_error(server: Server) -> None:
    with Client(server.url, api_key="wrong-key", timeout=30, max_retries=2) as bad:
        with pytest.raises(AuthenticationError) as e:
            bad.chat.completions.create(messages=MSG, max_tokens=4)
        assert e.value.status == 401 and e.value.code == "invalid_api_key"
        with pytest.raises(AuthenticationError):
            bad.chat.completions.create(messages=MSG, max_tokens=4, stream=True)
        with pytest.raises(AuthenticationError) as e:
            bad.connect()
        assert e.value.status == 401
    with Client(server.url, api_key=None, timeout=30, max_retries=0) as none:
        with pytest.raises(AuthenticationError):
            none.models.list()

    async def main() -> None:
        async with AsyncClient(server.url, api_key="wrong-key", max_retries=0) as c:
            with pytest.raises(AuthenticationError):
                await c.completions.create(prompt="hi", max_tokens=2)
            with pytest.raises(AuthenticationError):
                async with c.connect():
                    pass

    asyncio.run(main())


# S5 -- a tenant over its limit gets the rate-limit error with its retry delay. On a shared server
# another client may have spent the tenant's minute already: the first request may be refused.
LIMITED_RPM = 2


def test_S5_tenant_over_limit_is_rate_limit_error(server: Server) -> None:
    with Client(server.url, api_key=LIMITED_KEY, timeout=30, max_retries=0) as c:
        err = None
        for _ in range(LIMITED_RPM + 1):
            try:
                c.chat.completions.create(messages=MSG, max_tokens=2)
            except RateLimitError as e:
                err = e
                break
        assert err is not None, "the tenant's requests_per_minute never refused"
        assert err.status == 429 and err.code == "rate_limit_exceeded"
        assert err.retry_after is not None and 0 < err.retry_after <= 60
        # the same over realm.v1: an `error` message with retry_after_s, the connection lives
        with c.connect() as conn:
            werr = None
            for _ in range(LIMITED_RPM + 1):
                try:
                    conn.chat(MSG, max_tokens=2).result()
                except RateLimitError as e:
                    werr = e
                    break
            assert werr is not None
            assert werr.status == 429 and werr.code == "rate_limit_exceeded"
            assert werr.retry_after is not None and 0 < werr.retry_after <= 60
            assert conn.ping() is None and not conn.closed


# S6 -- a server killed mid-stream: a clean connection error, no hang. Always a server of its own
# (never the shared one).
def test_S6_server_killed_mid_stream(tenants_file: Path) -> None:
    srv = OwnServer(server_args(tenants_file), "realm-client-test-kill")
    srv.wait_ready()
    try:
        c = Client(srv.url, api_key=KEY, timeout=20, max_retries=0)
        sse = c.chat.completions.create(messages=MSG, max_tokens=4000, extra_body=LONG, stream=True)
        sse_it = iter(sse)
        next(sse_it)
        conn = c.connect()
        ws_streams = [conn.chat(MSG, max_tokens=4000, extra_body=LONG) for _ in range(2)]
        for s in ws_streams:
            s.wait_created()
        ws_it = iter(ws_streams[0])
        next(ws_it)
        srv.kill()
        t0 = time.monotonic()
        with pytest.raises(APIConnectionError):
            for _ in sse_it:
                pass
        for s in ws_streams:
            with pytest.raises(ConnectionClosedError) as e:
                s.result()
            assert e.value.close_code == 1006
        assert conn.closed
        with pytest.raises(ConnectionClosedError):
            conn.chat(MSG, max_tokens=2)
        assert time.monotonic() - t0 < 10
        conn.close()
        # and a new request finds no server: a connection error at once, not a hang
        t1 = time.monotonic()
        with pytest.raises(APIConnectionError):
            c.chat.completions.create(messages=MSG, max_tokens=2)
        with pytest.raises(APIConnectionError):
            c.connect()
        assert time.monotonic() - t1 < 5
        c.close()
        assert threading.active_count() < 50
    finally:
        srv.kill()
