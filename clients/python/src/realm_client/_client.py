"""The synchronous client: ``Client``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, Literal, Mapping, TypeVar, overload

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
    from ._ws import Connection

T = TypeVar("T")


class Stream(Generic[T]):
    """The chunks of a streamed answer (server-sent events). Iterate it; ``close()`` it (or use
    ``with``, or break out of a ``for`` loop) to stop early: that closes the HTTP response, and
    the server cancels the request."""

    def __init__(self, response: httpx2.Response, cls: type[T]) -> None:
        self.response = response
        self._cls = cls
        self._iter: Iterator[T] | None = None
        self.closed = False

    def _chunks(self) -> Iterator[T]:
        try:
            for obj in _base.iter_sse_lines(self.response.iter_lines()):
                yield from_dict(self._cls, obj)
        except httpx2.HTTPError as e:
            raise _base.transport_error(e) from e
        finally:
            self.close()

    def __iter__(self) -> Iterator[T]:
        # A generator per loop: when a `for` loop is left early, CPython closes it at once,
        # which closes the response and so cancels the request on the server.
        if self._iter is None:
            self._iter = self._chunks()
        it = self._iter
        try:
            yield from it
        finally:
            self.close()

    def __next__(self) -> T:
        if self._iter is None:
            self._iter = self._chunks()
        return next(self._iter)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.response.close()

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Base:
    def __init__(self, client: Client) -> None:
        self._client = client


class ChatCompletions(_Base):
    @overload
    def create(self, *, messages: list[dict[str, Any]], stream: Literal[False] = False, **kw: Any) -> ChatCompletion: ...
    @overload
    def create(self, *, messages: list[dict[str, Any]], stream: Literal[True], **kw: Any) -> Stream[ChatCompletionChunk]: ...
    def create(
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
    ) -> ChatCompletion | Stream[ChatCompletionChunk]:
        """``POST /v1/chat/completions``. ``extra_body`` adds fields (``top_k``, ``min_p``,
        ``ignore_eos``, and the structured-output extensions ``grammar``, ``json_schema``,
        ``regex``, ``lark``). ``response_format``: OpenAI's structured output."""
        payload = _base.call_payload(locals())
        if stream:
            return self._client._stream("/v1/chat/completions", payload, ChatCompletionChunk, timeout)
        return from_dict(ChatCompletion, self._client._post("/v1/chat/completions", payload, timeout))


class Completions(_Base):
    @overload
    def create(self, *, prompt: str | list[Any], stream: Literal[False] = False, **kw: Any) -> Completion: ...
    @overload
    def create(self, *, prompt: str | list[Any], stream: Literal[True], **kw: Any) -> Stream[Completion]: ...
    def create(
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
    ) -> Completion | Stream[Completion]:
        """``POST /v1/completions``."""
        payload = _base.call_payload(locals())
        if stream:
            return self._client._stream("/v1/completions", payload, Completion, timeout)
        return from_dict(Completion, self._client._post("/v1/completions", payload, timeout))


class Chat(_Base):
    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.completions = ChatCompletions(client)


class Models(_Base):
    def list(self) -> ModelList:
        """``GET /v1/models``."""
        return from_dict(ModelList, self._client._request("GET", "/v1/models", None, None))


class Client:
    """A client of realm-server: OpenAI's HTTP API (``chat.completions``, ``completions``,
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
        http_client: httpx2.Client | None = None,
    ) -> None:
        self.base_url = _base.normalize_base_url(base_url)
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self._http = http_client or httpx2.Client(timeout=_base.make_timeout(timeout))
        self.chat = Chat(self)
        self.completions = Completions(self)
        self.models = Models(self)
        self._sleep: Callable[[float], None] = time.sleep

    # -- HTTP ------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, payload: Any, timeout: float | None, stream: bool) -> httpx2.Response:
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
                resp = self._http.send(req, stream=True)
            except httpx2.HTTPError as e:
                err = _base.transport_error(e)
                if not _base.safe_to_retry_transport(e) or attempt >= self.max_retries:
                    raise err from e
                delay = _base.retry_delay(None, attempt)
            else:
                if resp.status_code < 400:
                    if not stream:
                        try:
                            resp.read()
                        except httpx2.HTTPError as e:
                            raise _base.transport_error(e) from e
                        finally:
                            resp.close()
                    return resp
                try:
                    content = resp.read()
                except httpx2.HTTPError as e:
                    raise _base.transport_error(e) from e
                finally:
                    resp.close()
                err = error_from_response(resp.status_code, resp.headers, content)
                delay = _base.retry_delay(err, attempt) if _base.is_retryable(err) else None
                if delay is None or attempt >= self.max_retries:
                    raise err
            self._sleep(delay)  # type: ignore[arg-type]
            attempt += 1

    def _request(self, method: str, path: str, payload: Any, timeout: float | None) -> Any:
        resp = self._send(method, path, payload, timeout, stream=False)
        return _base.decode_json(resp.text, "answer")

    def _post(self, path: str, payload: Any, timeout: float | None) -> Any:
        return self._request("POST", path, payload, timeout)

    def _stream(self, path: str, payload: dict[str, Any], cls: type[T], timeout: float | None) -> Stream[T]:
        return Stream(self._send("POST", path, payload, timeout, stream=True), cls)

    def health(self) -> Health:
        """``GET /health``: never raises for 503 (``loading``/``draining``); raises
        ``APIConnectionError`` when the server cannot be reached."""
        try:
            resp = self._http.get(self.base_url + "/health")
        except httpx2.HTTPError as e:
            raise _base.transport_error(e) from e
        obj = _base.decode_json(resp.text, "health answer")
        if not isinstance(obj, dict) or "status" not in obj:
            raise error_from_response(resp.status_code, resp.headers, resp.content)
        return Health(status=str(obj["status"]), ok=resp.status_code == 200)

    # -- WebSocket -------------------------------------------------------------------------------

    def connect(self, *, max_message_bytes: int = 16 << 20) -> Connection:
        """Open a realm.v1 WebSocket connection (use it with ``with``)."""
        from ._ws import Connection

        return Connection.open(self, max_message_bytes=max_message_bytes)

    ws = connect

    # -- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Client", "Stream", "APIConnectionError"]
