"""The asynchronous client: ``AsyncClient`` (same surface as ``Client``, awaited)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Generic, Literal, Mapping, TypeVar, overload

import httpx2

from . import _base
from ._base import NOT_GIVEN
from ._errors import APIConnectionError, RealmError, error_from_response
from ._types import (
    ChatCompletion,
    ChatCompletionChunk,
    Completion,
    Health,
    ModelList,
    from_dict,
)

if TYPE_CHECKING:
    from ._ws import _ConnectCM

T = TypeVar("T")


class AsyncStream(Generic[T]):
    """The chunks of a streamed answer (server-sent events), iterated with ``async for``.
    ``await close()`` it (or use ``async with``, or cancel the task that iterates it) to stop
    early: that closes the HTTP response, and the server cancels the request."""

    def __init__(self, response: httpx2.Response, cls: type[T]) -> None:
        self.response = response
        self._cls = cls
        self._iter: AsyncIterator[T] | None = None
        self.closed = False

    async def _chunks(self) -> AsyncIterator[T]:
        dec = _base.SSEDecoder()
        try:
            async for line in self.response.aiter_lines():
                for obj in dec.feed(line.rstrip("\r")):
                    yield from_dict(self._cls, obj)
                if dec.done:
                    return
            for obj in dec.feed(""):
                yield from_dict(self._cls, obj)
            if not dec.done:
                raise APIConnectionError("the stream ended before [DONE]: the server went away")
        except httpx2.HTTPError as e:
            raise _base.transport_error(e) from e
        finally:
            await self.close()

    def __aiter__(self) -> AsyncIterator[T]:
        if self._iter is None:
            self._iter = self._chunks()
        return self._iter

    async def __anext__(self) -> T:
        return await self.__aiter__().__anext__()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.response.aclose()

    async def __aenter__(self) -> AsyncStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._iter is not None:
            await self._iter.aclose()  # type: ignore[attr-defined]
        await self.close()


class _Base:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client


class ChatCompletions(_Base):
    @overload
    async def create(self, *, messages: list[dict[str, Any]], stream: Literal[False] = False, **kw: Any) -> ChatCompletion: ...
    @overload
    async def create(self, *, messages: list[dict[str, Any]], stream: Literal[True], **kw: Any) -> AsyncStream[ChatCompletionChunk]: ...
    async def create(
        self,
        *,
        messages: list[dict[str, Any]],
        model: str | None = None,
        stream: bool = False,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: str | list[str] | None = None,
        n: int | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        stream_options: Mapping[str, Any] | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        response_format: Mapping[str, Any] | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> ChatCompletion | AsyncStream[ChatCompletionChunk]:
        """``POST /v1/chat/completions``. ``extra_body`` adds fields (``top_k``, ``min_p``,
        ``ignore_eos``, and the structured-output extensions ``grammar``, ``json_schema``,
        ``regex``, ``lark``). ``response_format``: OpenAI's structured output."""
        payload = _base.call_payload(locals())
        if stream:
            return await self._client._stream("/v1/chat/completions", payload, ChatCompletionChunk, timeout)
        return from_dict(ChatCompletion, await self._client._post("/v1/chat/completions", payload, timeout))


class Completions(_Base):
    @overload
    async def create(self, *, prompt: str | list[Any], stream: Literal[False] = False, **kw: Any) -> Completion: ...
    @overload
    async def create(self, *, prompt: str | list[Any], stream: Literal[True], **kw: Any) -> AsyncStream[Completion]: ...
    async def create(
        self,
        *,
        prompt: str | list[Any],
        model: str | None = None,
        stream: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: str | list[str] | None = None,
        n: int | None = None,
        logprobs: int | None = None,
        echo: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        response_format: Mapping[str, Any] | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Completion | AsyncStream[Completion]:
        """``POST /v1/completions``."""
        payload = _base.call_payload(locals())
        if stream:
            return await self._client._stream("/v1/completions", payload, Completion, timeout)
        return from_dict(Completion, await self._client._post("/v1/completions", payload, timeout))


class Chat(_Base):
    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self.completions = ChatCompletions(client)


class Models(_Base):
    async def list(self) -> ModelList:
        """``GET /v1/models``."""
        return from_dict(ModelList, await self._client._request("GET", "/v1/models", None, None))


class AsyncClient:
    """The asynchronous client of realm-server: OpenAI's HTTP API (``chat.completions``, ``completions``,
    ``models``) and realm.v1 WebSocket connections (``connect()``).

    ``base_url`` defaults to ``$REALM_BASE_URL``, else ``http://127.0.0.1:8080`` (a trailing
    ``/v1`` is accepted). ``timeout`` bounds every wait (connect, each read); ``max_retries``
    is how often a request is retried where that is safe (connection refused; 429 and 503
    before anything was streamed)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = _base.DEFAULT_TIMEOUT,
        max_retries: int = 2,
        *,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.base_url = _base.normalize_base_url(base_url)
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self._http = http_client or httpx2.AsyncClient(timeout=_base.make_timeout(timeout))
        self.chat = Chat(self)
        self.completions = Completions(self)
        self.models = Models(self)
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    # -- HTTP ------------------------------------------------------------------------------------

    async def _send(self, method: str, path: str, payload: Any, timeout: float | None, stream: bool) -> httpx2.Response:
        headers = _base.auth_headers(self.api_key)
        req = self._http.build_request(
            method,
            self.base_url + path,
            json=payload,
            headers=headers,
            timeout=_base.make_timeout(timeout) if timeout is not None else httpx2.USE_CLIENT_DEFAULT,
        )
        attempt = 0
        while True:
            err: RealmError
            try:
                resp = await self._http.send(req, stream=True)
            except httpx2.HTTPError as e:
                err = _base.transport_error(e)
                if not _base.safe_to_retry_transport(e) or attempt >= self.max_retries:
                    raise err from e
                delay = _base.retry_delay(None, attempt)
            else:
                if resp.status_code < 400:
                    if not stream:
                        try:
                            await resp.aread()
                        except httpx2.HTTPError as e:
                            raise _base.transport_error(e) from e
                        finally:
                            await resp.aclose()
                    return resp
                try:
                    content = await resp.aread()
                except httpx2.HTTPError as e:
                    raise _base.transport_error(e) from e
                finally:
                    await resp.aclose()
                err = error_from_response(resp.status_code, resp.headers, content)
                delay = _base.retry_delay(err, attempt) if _base.is_retryable(err) else None
                if delay is None or attempt >= self.max_retries:
                    raise err
            await self._sleep(delay)  # type: ignore[arg-type]
            attempt += 1

    async def _request(self, method: str, path: str, payload: Any, timeout: float | None) -> Any:
        resp = await self._send(method, path, payload, timeout, stream=False)
        return _base.decode_json(resp.text, "answer")

    async def _post(self, path: str, payload: Any, timeout: float | None) -> Any:
        return await self._request("POST", path, payload, timeout)

    async def _stream(self, path: str, payload: dict[str, Any], cls: type[T], timeout: float | None) -> AsyncStream[T]:
        return AsyncStream(await self._send("POST", path, payload, timeout, stream=True), cls)

    async def health(self) -> Health:
        """``GET /health``: never raises for 503 (``loading``/``draining``); raises
        ``APIConnectionError`` when the server cannot be reached."""
        try:
            resp = await self._http.get(self.base_url + "/health")
        except httpx2.HTTPError as e:
            raise _base.transport_error(e) from e
        obj = _base.decode_json(resp.text, "health answer")
        if not isinstance(obj, dict) or "status" not in obj:
            raise error_from_response(resp.status_code, resp.headers, resp.content)
        return Health(status=str(obj["status"]), ok=resp.status_code == 200)

    # -- WebSocket -------------------------------------------------------------------------------

    def connect(self, *, max_message_bytes: int = 16 << 20) -> _ConnectCM:
        """A realm.v1 WebSocket connection: ``async with client.connect() as conn:`` (or
        ``conn = await client.connect()``, then ``await conn.close()``)."""
        from ._ws import _ConnectCM

        return _ConnectCM(self, max_message_bytes)

    ws = connect

    # -- lifetime --------------------------------------------------------------------------------

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = ["AsyncClient", "AsyncStream"]
