"""realm.v1 over a WebSocket (native-server/PROTOCOL.md): many requests on one connection,
cancel by id, typed errors, and every request in flight failed with ``ConnectionClosedError``
when the connection drops. ``AsyncConnection`` is the implementation; ``Connection`` runs one
on an event loop in a background thread for synchronous code."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, AsyncIterator, Coroutine, Generator, Iterator, Mapping, TypeVar

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from . import _base
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    ConnectionClosedError,
    PayloadTooLargeError,
    ProtocolError,
    RealmError,
    error_from_code,
    error_from_response,
)
from ._types import Created, Delta, Done, Hello, RequestResult, ResultChoice, from_dict

if TYPE_CHECKING:
    from ._async_client import AsyncClient
    from ._client import Client

SUBPROTOCOL = "realm.v1"
R = TypeVar("R")
_CLOSE_TIMEOUT = 3.0


def _closed_error(code: int | None, reason: str) -> ConnectionClosedError:
    meaning = {
        1000: "closed normally",
        1001: "the server is going away (shutting down): reconnect",
        1003: "the server refused a binary frame",
        1006: "the connection was lost",
        1009: "a message was too big",
        4001: "the client read too slowly",
        4002: "the connection was idle",
        4003: "too many unreadable messages",
    }.get(code or 1006, "closed")
    return ConnectionClosedError(
        f"realm.v1 connection closed ({code or 1006}: {meaning}{': ' + reason if reason else ''})",
        close_code=code or 1006,
        reason=reason,
    )


class AsyncRequestStream:
    """One request on a realm.v1 connection. ``async for delta in stream`` yields ``Delta``s
    (text may be empty); ``await stream.result()`` waits for ``done`` and returns the whole
    answer; ``await stream.cancel()`` asks the server to stop it (its ``done`` then has finish
    ``cancelled``). A refusal or failure raises its typed error from the iteration or
    ``result()``; a dropped connection raises ``ConnectionClosedError``."""

    def __init__(self, conn: AsyncConnection, id: str) -> None:
        self.id = id
        self._conn = conn
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._created_evt = asyncio.Event()
        self.created: Created | None = None
        self.done: Done | None = None
        self.error: RealmError | None = None
        self.finished = False
        self._texts: dict[int, list[str]] = {}

    # fed by the connection's reader
    def _push(self, kind: str, payload: Any) -> None:
        if kind == "created":
            self.created = payload
            self._created_evt.set()
            return
        if kind in ("error", "closed"):
            self._created_evt.set()
        self._queue.put_nowait((kind, payload))

    async def _next(self) -> Delta | None:
        while True:
            if self.finished:
                if self.error is not None:
                    raise self.error
                return None
            try:
                kind, payload = await asyncio.wait_for(self._queue.get(), self._conn.timeout)
            except asyncio.TimeoutError:
                self._finish(APITimeoutError(f"no message about request {self.id!r} within {self._conn.timeout}s"))
                await self._conn._send_cancel(self.id)
                continue
            if kind == "delta":
                self._texts.setdefault(payload.index, []).append(payload.text)
                return payload  # type: ignore[no-any-return]
            if kind == "done":
                self.done = payload
                self._finish(None)
            else:  # error, closed
                self._finish(payload)

    def _finish(self, err: RealmError | None) -> None:
        self.finished = True
        self.error = err
        self._created_evt.set()
        self._conn._streams.pop(self.id, None)

    def __aiter__(self) -> AsyncIterator[Delta]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Delta]:
        try:
            while (d := await self._next()) is not None:
                yield d
        finally:
            if not self.finished:  # left early: stop the request on the server
                await self.cancel()

    async def wait_created(self) -> Created:
        """Wait for ``created`` (the request passed every check and was queued)."""
        try:
            await asyncio.wait_for(self._created_evt.wait(), self._conn.timeout)
        except asyncio.TimeoutError:
            raise APITimeoutError(f"request {self.id!r} was not created within {self._conn.timeout}s") from None
        if self.created is None:
            while (await self._next()) is not None:  # raises the request's error
                pass
            raise ProtocolError(f"request {self.id!r} ended without created")
        return self.created

    async def result(self) -> RequestResult:
        """Read the request to its end and return every choice's text, finish reason, timings."""
        while (await self._next()) is not None:
            pass
        done = self.done or Done(id=self.id)
        return RequestResult(
            id=self.id,
            model=self.created.model if self.created else "",
            choices=[
                ResultChoice(c.index, "".join(self._texts.get(c.index, [])), c.finish_reason, c.timings)
                for c in done.choices
            ],
            usage=done.usage,
        )

    def text(self, index: int = 0) -> str:
        """The text of choice ``index`` received so far."""
        return "".join(self._texts.get(index, []))

    async def cancel(self) -> None:
        """Send ``cancel`` (no-op once the request has ended or the connection is closed)."""
        if not self.finished:
            await self._conn._send_cancel(self.id)

    async def __aenter__(self) -> AsyncRequestStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()


class AsyncConnection:
    """An open realm.v1 connection. ``hello`` holds the server's limits."""

    def __init__(self, ws: ClientConnection, hello: Hello, timeout: float) -> None:
        self._ws = ws
        self.hello = hello
        self.timeout = timeout
        self._streams: dict[str, AsyncRequestStream] = {}
        self._pings: deque[asyncio.Future[str | None]] = deque()
        self._ids = itertools.count(1)
        self._closed: ConnectionClosedError | ProtocolError | APIConnectionError | None = None
        self.last_error: RealmError | None = None  # an `error` without id
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str,
        api_key: str | None,
        *,
        timeout: float,
        max_retries: int = 0,
        max_message_bytes: int = 16 << 20,
        subprotocol: str = SUBPROTOCOL,
    ) -> AsyncConnection:
        attempt = 0
        open_timeout = min(timeout, _base.DEFAULT_CONNECT_TIMEOUT)
        while True:
            try:
                return await cls._open_once(url, api_key, timeout, open_timeout, max_message_bytes, subprotocol)
            except RealmError as err:
                refused = isinstance(err, APIConnectionError) and getattr(err, "_refused", False)
                delay = None
                if refused:
                    delay = _base.retry_delay(None, attempt)
                elif _base.is_retryable(err):
                    delay = _base.retry_delay(err, attempt)
                if delay is None or attempt >= max_retries:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    @classmethod
    async def _open_once(
        cls, url: str, api_key: str | None, timeout: float, open_timeout: float, max_size: int, subprotocol: str
    ) -> AsyncConnection:
        try:
            ws = await ws_connect(
                url,
                subprotocols=[subprotocol],  # type: ignore[list-item]
                additional_headers=_base.auth_headers(api_key),
                open_timeout=open_timeout,
                close_timeout=_CLOSE_TIMEOUT,
                max_size=max_size,
                ping_interval=20,
                ping_timeout=20,
                proxy=None,
            )
        except websockets.exceptions.InvalidStatus as e:
            r = e.response
            raise error_from_response(r.status_code, r.headers, r.body or b"") from None
        except (ConnectionRefusedError, FileNotFoundError) as e:
            err = APIConnectionError(f"cannot connect to {url}: {e}")
            err._refused = True  # type: ignore[attr-defined]
            raise err from None
        except (asyncio.TimeoutError, TimeoutError) as e:
            raise APITimeoutError(f"no WebSocket handshake from {url} within {open_timeout}s") from e
        except websockets.exceptions.InvalidHandshake as e:
            raise ProtocolError(f"bad WebSocket handshake from {url}: {e}") from None
        except OSError as e:
            raise APIConnectionError(f"cannot connect to {url}: {e}") from None
        try:
            if ws.subprotocol not in (None, SUBPROTOCOL):
                raise ProtocolError(f"the server selected the subprotocol {ws.subprotocol!r}, not {SUBPROTOCOL}")
            try:
                raw = await asyncio.wait_for(ws.recv(), open_timeout)
            except asyncio.TimeoutError:
                raise APITimeoutError(f"no hello from {url} within {open_timeout}s") from None
            except websockets.ConnectionClosed as e:
                raise _closed_error(e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else "") from None
            msg = _decode(raw)
            if msg.get("type") != "hello":
                raise ProtocolError(f"expected hello, got {str(raw)[:100]!r}")
            hello = from_dict(Hello, msg)
            if hello.protocol != SUBPROTOCOL:
                raise ProtocolError(f"the server speaks {hello.protocol!r}, this client {SUBPROTOCOL}")
        except BaseException:
            await ws.close(1002, "protocol error")
            raise
        return cls(ws, hello, timeout)

    # -- reading ---------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        err: ConnectionClosedError | ProtocolError | APIConnectionError
        try:
            async for raw in self._ws:
                self._dispatch(_decode(raw))
            err = _closed_error(self._ws.close_code, self._ws.close_reason or "")
        except websockets.ConnectionClosed as e:
            r = e.rcvd or e.sent  # the client's own close (1009: a message over max_size)
            err = _closed_error(r.code if r else None, r.reason if r else "")
        except ProtocolError as e:
            err = e
            await self._ws.close(1002, "protocol error")
        except Exception as e:  # noqa: BLE001 - any failure must fail the requests, not hang them
            err = APIConnectionError(f"realm.v1 connection failed: {e!r}")
            await self._ws.close(1011, "client error")
        self._fail_all(err)

    def _fail_all(self, err: ConnectionClosedError | ProtocolError | APIConnectionError) -> None:
        if self._closed is None:
            self._closed = err
        for s in list(self._streams.values()):
            s._push("closed", err)
        while self._pings:
            f = self._pings.popleft()
            if not f.done():
                f.set_exception(err)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        t = msg["type"]
        rid = msg.get("id")
        stream = self._streams.get(rid) if isinstance(rid, str) else None
        if t == "delta":
            if stream is not None:
                stream._push("delta", from_dict(Delta, msg))
        elif t == "created":
            if stream is not None:
                stream._push("created", from_dict(Created, msg))
        elif t == "done":
            if stream is not None:
                self._streams.pop(rid, None)  # type: ignore[arg-type]
                stream._push("done", from_dict(Done, msg))
        elif t == "error":
            ra = msg.get("retry_after_s")
            err = error_from_code(
                msg.get("code") if isinstance(msg.get("code"), str) else None,
                str(msg.get("message") or "error"),
                param=msg.get("param") if isinstance(msg.get("param"), str) else None,
                retry_after=float(ra) if isinstance(ra, (int, float)) else None,
                body=msg,
            )
            if stream is not None:
                self._streams.pop(rid, None)  # type: ignore[arg-type]
                stream._push("error", err)
            elif rid is None:
                self.last_error = err
        elif t == "pong":
            if self._pings:
                f = self._pings.popleft()
                if not f.done():
                    f.set_result(msg.get("data"))
        # hello again, or a type a later server adds: ignored

    # -- writing ---------------------------------------------------------------------------------

    async def _send(self, msg: Mapping[str, Any]) -> None:
        if self._closed is not None:
            raise self._closed
        text = json.dumps(msg, separators=(",", ":"))
        limit = self.hello.max_message_bytes
        if limit and len(text.encode()) > limit:
            raise PayloadTooLargeError(
                f"message of {len(text.encode())} bytes is over the server's max_message_bytes ({limit})",
                param="request",
            )
        try:
            await asyncio.wait_for(self._ws.send(text), self.timeout)
        except websockets.ConnectionClosed as e:
            r = e.rcvd
            raise self._closed or _closed_error(r.code if r else None, r.reason if r else "") from None
        except asyncio.TimeoutError:
            raise APITimeoutError(f"could not send within {self.timeout}s") from None

    async def _send_cancel(self, id: str) -> None:
        if self._closed is None:
            try:
                await self._send({"type": "cancel", "id": id})
            except APIConnectionError:
                pass

    async def _start(self, kind: str, request: dict[str, Any], id: str | None) -> AsyncRequestStream:
        rid = id if id is not None else f"r{next(self._ids)}"
        if rid in self._streams:
            raise ValueError(f"request id {rid!r} is in flight on this connection")
        if self._closed is not None:
            raise self._closed
        stream = AsyncRequestStream(self, rid)
        self._streams[rid] = stream
        try:
            await self._send({"type": kind, "id": rid, "request": request})
        except BaseException:
            self._streams.pop(rid, None)
            raise
        return stream

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: str | list[str] | None = None,
        n: int | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> AsyncRequestStream:
        """Send a ``chat`` message; returns its stream at once (events arrive as they come)."""
        return await self._start("chat", _base.call_payload(locals(), ("self", "extra_body", "id")), id)

    async def complete(
        self,
        prompt: str | list[Any],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: str | list[str] | None = None,
        n: int | None = None,
        logprobs: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> AsyncRequestStream:
        """Send a ``complete`` message; returns its stream at once."""
        return await self._start("complete", _base.call_payload(locals(), ("self", "extra_body", "id")), id)

    async def ping(self, data: str | None = None) -> str | None:
        """An application-level ``ping`` (also keeps an idle connection open); returns the data."""
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pings.append(fut)
        await self._send({"type": "ping", "data": data} if data is not None else {"type": "ping"})
        try:
            return await asyncio.wait_for(fut, self.timeout)
        except asyncio.TimeoutError:
            raise APITimeoutError(f"no pong within {self.timeout}s") from None

    @property
    def in_flight(self) -> int:
        return len(self._streams)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    async def close(self) -> None:
        """Close the connection (the server cancels its requests still in flight)."""
        if self._closed is None:
            self._closed = ConnectionClosedError("realm.v1 connection closed by the client", close_code=1000)
        try:
            await asyncio.wait_for(self._ws.close(), _CLOSE_TIMEOUT + 1)
        except Exception:  # noqa: BLE001
            pass
        try:
            await asyncio.wait_for(self._reader, _CLOSE_TIMEOUT + 1)
        except BaseException:  # noqa: BLE001
            self._reader.cancel()
        self._fail_all(self._closed)

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _decode(raw: str | bytes) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raise ProtocolError("the server sent a binary frame (realm.v1 is JSON text)")
    try:
        msg = json.loads(raw)
    except ValueError:
        raise ProtocolError(f"the server sent a message that is not JSON: {raw[:100]!r}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError(f"the server sent a message without a type: {raw[:100]!r}")
    return msg


class _ConnectCM:
    """``async with client.connect() as conn`` or ``conn = await client.connect()``."""

    def __init__(self, client: AsyncClient, max_message_bytes: int) -> None:
        self._client = client
        self._max = max_message_bytes
        self._conn: AsyncConnection | None = None

    def _open(self) -> Coroutine[Any, Any, AsyncConnection]:
        c = self._client
        return AsyncConnection.open(
            _base.ws_url(c.base_url), c.api_key, timeout=c.timeout, max_retries=c.max_retries, max_message_bytes=self._max
        )

    def __await__(self) -> Generator[Any, None, AsyncConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncConnection:
        self._conn = await self._open()
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()


# ---- synchronous -------------------------------------------------------------------------------


class _Loop:
    """An event loop in a daemon thread, for one synchronous ``Connection``."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="realm-client-ws", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            # every await inside has its own timeout; this one only guards against a stuck loop
            return fut.result(self.timeout + 30)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise APITimeoutError("the realm.v1 connection did not answer in time") from None

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


class RequestStream:
    """One request on a synchronous ``Connection``: iterate its ``Delta``s (leaving the loop
    early cancels it), ``result()``, ``cancel()``, ``with``."""

    def __init__(self, loop: _Loop, stream: AsyncRequestStream) -> None:
        self._loop = loop
        self._s = stream
        self.id = stream.id

    @property
    def created(self) -> Created | None:
        return self._s.created

    @property
    def done(self) -> Done | None:
        return self._s.done

    @property
    def finished(self) -> bool:
        return self._s.finished

    def __iter__(self) -> Iterator[Delta]:
        try:
            while (d := self._loop.run(self._s._next())) is not None:
                yield d
        finally:
            if not self._s.finished:
                self.cancel()

    def wait_created(self) -> Created:
        return self._loop.run(self._s.wait_created())

    def result(self) -> RequestResult:
        return self._loop.run(self._s.result())

    def text(self, index: int = 0) -> str:
        return self._s.text(index)

    def cancel(self) -> None:
        self._loop.run(self._s.cancel())

    def __enter__(self) -> RequestStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class Connection:
    """A synchronous realm.v1 connection (``with client.connect() as conn:``). Safe to use from
    several threads: each request is its own ``RequestStream``."""

    def __init__(self, loop: _Loop, conn: AsyncConnection) -> None:
        self._loop = loop
        self._conn = conn
        self.hello = conn.hello

    @classmethod
    def open(cls, client: Client, *, max_message_bytes: int = 16 << 20) -> Connection:
        loop = _Loop(client.timeout)
        try:
            conn = loop.run(
                AsyncConnection.open(
                    _base.ws_url(client.base_url),
                    client.api_key,
                    timeout=client.timeout,
                    max_retries=client.max_retries,
                    max_message_bytes=max_message_bytes,
                )
            )
        except BaseException:
            loop.stop()
            raise
        return cls(loop, conn)

    def chat(self, messages: list[dict[str, Any]], **kw: Any) -> RequestStream:
        """As ``AsyncConnection.chat``."""
        return RequestStream(self._loop, self._loop.run(self._conn.chat(messages, **kw)))

    def complete(self, prompt: str | list[Any], **kw: Any) -> RequestStream:
        """As ``AsyncConnection.complete``."""
        return RequestStream(self._loop, self._loop.run(self._conn.complete(prompt, **kw)))

    def ping(self, data: str | None = None) -> str | None:
        return self._loop.run(self._conn.ping(data))

    @property
    def closed(self) -> bool:
        return self._conn.closed

    @property
    def in_flight(self) -> int:
        return self._conn.in_flight

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._conn.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
