"""What the sync and async clients share: URLs, request bodies, SSE decoding, retry policy."""

from __future__ import annotations

import json
import os
import random
from typing import Any, Iterable, Iterator, Mapping

import httpx2

from ._errors import (
    APIConnectionError,
    OverloadedError,
    ProtocolError,
    RateLimitError,
    RealmError,
    ShuttingDownError,
    error_from_code,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
#: a Retry-After longer than this is not waited for: the error is raised instead.
MAX_RETRY_WAIT = 60.0
NOT_GIVEN: Any = object()


def normalize_base_url(base_url: str | None) -> str:
    url = (base_url or os.environ.get("REALM_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    if url.endswith("/v1"):  # accept OpenAI-style base URLs too
        url = url[: -len("/v1")]
    return url


def ws_url(base_url: str) -> str:
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :] + "/v1/ws"
    if base_url.startswith("http://"):
        return "ws://" + base_url[len("http://") :] + "/v1/ws"
    return base_url + "/v1/ws"


def make_timeout(timeout: float | httpx2.Timeout | None) -> httpx2.Timeout:
    if isinstance(timeout, httpx2.Timeout):
        return timeout
    return httpx2.Timeout(timeout, connect=min(DEFAULT_CONNECT_TIMEOUT, timeout) if timeout else DEFAULT_CONNECT_TIMEOUT)


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def body(params: Mapping[str, Any], extra_body: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {k: v for k, v in params.items() if v is not NOT_GIVEN and v is not None}
    if extra_body:
        out.update(extra_body)
    return out


def call_payload(
    params: Mapping[str, Any], drop: Iterable[str] = ("self", "extra_body", "timeout")
) -> dict[str, Any]:
    """The request body of a ``create``/``chat`` call from its ``locals()``: the call's own
    arguments (``drop``) left out, ``stream_options`` only with ``stream``, ``extra_body`` merged."""
    skip = set(drop)
    out = {k: v for k, v in params.items() if k not in skip}
    if "stream" in out and not out["stream"]:
        out.pop("stream_options", None)
    return body(out, params.get("extra_body"))


def is_retryable(err: RealmError) -> bool:
    return isinstance(err, (RateLimitError, OverloadedError, ShuttingDownError))


def retry_delay(err: RealmError | None, attempt: int) -> float | None:
    """Seconds to wait before retry number ``attempt`` (0-based), or None to give up."""
    if err is not None and err.retry_after is not None:
        return err.retry_after if err.retry_after <= MAX_RETRY_WAIT else None
    base = min(0.5 * (2**attempt), 8.0)
    return base * (0.75 + random.random() * 0.5)


def decode_json(data: str, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise ProtocolError(f"malformed {what} from the server: {data[:100]!r}") from e


def event_error(obj: Any) -> RealmError | None:
    """An SSE ``data: {"error": {...}}`` event (a failure while streaming)."""
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        d = obj["error"]
        code = d.get("code") if isinstance(d.get("code"), str) else None
        err = error_from_code(code, str(d.get("message") or "error while streaming"), param=d.get("param"), body=obj)
        return err
    return None


class SSEDecoder:
    """Server-sent events → the JSON objects of their ``data``; ends at ``data: [DONE]``."""

    def __init__(self) -> None:
        self.data: list[str] = []
        self.done = False

    def feed(self, line: str) -> Iterator[Any]:
        if line == "":
            if self.data:
                data = "\n".join(self.data)
                self.data = []
                if data == "[DONE]":
                    self.done = True
                    return
                obj = decode_json(data, "event")
                err = event_error(obj)
                if err is not None:
                    raise err
                if not isinstance(obj, dict):
                    raise ProtocolError(f"unexpected event from the server: {data[:100]!r}")
                yield obj
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self.data.append(value)


def iter_sse_lines(lines: Iterable[str]) -> Iterator[Any]:
    dec = SSEDecoder()
    for line in lines:
        yield from dec.feed(line.rstrip("\r"))
        if dec.done:
            return
    yield from dec.feed("")
    if not dec.done:
        raise APIConnectionError("the stream ended before [DONE]: the server went away")


def transport_error(e: Exception) -> APIConnectionError:
    from ._errors import APITimeoutError

    if isinstance(e, httpx2.TimeoutException):
        return APITimeoutError(f"timed out: {e!r}")
    if isinstance(e, (httpx2.RemoteProtocolError, httpx2.DecodingError)):
        return ProtocolError(f"the server broke the connection or the protocol: {e!r}")
    return APIConnectionError(f"connection error: {e!r}")


def safe_to_retry_transport(e: Exception) -> bool:
    """Only failures before anything was sent: connection refused, connect timeout."""
    return isinstance(e, (httpx2.ConnectError, httpx2.ConnectTimeout))
