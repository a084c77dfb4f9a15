"""Typed exceptions mirroring realm-server's error codes (crates/realm-protocol/src/error.rs)."""

from __future__ import annotations

import json
from typing import Any, Mapping

__all__ = [
    "RealmError",
    "BadRequestError",
    "ContextLengthError",
    "PayloadTooLargeError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "OverloadedError",
    "ShuttingDownError",
    "InternalServerError",
    "RequestCancelledError",
    "APIConnectionError",
    "APITimeoutError",
    "ProtocolError",
    "ConnectionClosedError",
    "error_from_code",
    "error_from_response",
]


class RealmError(Exception):
    """Base of every error this client raises.

    ``code`` is the server's stable error code (``invalid_request``, ``rate_limit_exceeded``, …,
    or a client-side code such as ``connection_error``), ``status`` the HTTP status (informative
    for WebSocket errors), ``param`` the request field at fault, ``retry_after`` the seconds to
    wait before retrying (when the server said), ``body`` the decoded error body if any.
    """

    default_code: str = "internal"
    default_status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.status = status if status is not None else self.default_status
        self.param = param
        self.retry_after = retry_after
        self.body = body
        self.request_id = request_id

    def __str__(self) -> str:
        extra = []
        if self.status is not None:
            extra.append(str(self.status))
        if self.code:
            extra.append(self.code)
        if self.param:
            extra.append(f"param={self.param}")
        if self.retry_after is not None:
            extra.append(f"retry_after={self.retry_after:g}s")
        return f"{self.message} ({', '.join(extra)})" if extra else self.message


class BadRequestError(RealmError):
    """400 ``invalid_request`` (and 405): ``param`` names the field at fault."""

    default_code = "invalid_request"
    default_status = 400


class ContextLengthError(BadRequestError):
    """400 ``context_length_exceeded``: the prompt does not fit the context."""

    default_code = "context_length_exceeded"


class PayloadTooLargeError(BadRequestError):
    """413 ``payload_too_large``, or a WebSocket message over the server's ``max_message_bytes``
    (refused by the client before sending)."""

    default_code = "payload_too_large"
    default_status = 413


class AuthenticationError(RealmError):
    """401 ``invalid_api_key``."""

    default_code = "invalid_api_key"
    default_status = 401


class PermissionDeniedError(RealmError):
    """403 ``model_not_allowed``."""

    default_code = "model_not_allowed"
    default_status = 403


class NotFoundError(RealmError):
    """404 ``model_not_found`` / ``not_found``."""

    default_code = "not_found"
    default_status = 404


class RateLimitError(RealmError):
    """429 ``rate_limit_exceeded``; ``retry_after`` from ``Retry-After`` / ``retry_after_s``."""

    default_code = "rate_limit_exceeded"
    default_status = 429


class OverloadedError(RealmError):
    """503 ``server_overloaded`` (queue full, model loading, no connection slot)."""

    default_code = "server_overloaded"
    default_status = 503


class ShuttingDownError(RealmError):
    """503 ``shutting_down``: the server drains; retry elsewhere or later."""

    default_code = "shutting_down"
    default_status = 503


class InternalServerError(RealmError):
    """500 ``internal``, and any code or 5xx status this client does not know."""

    default_code = "internal"
    default_status = 500


class RequestCancelledError(RealmError):
    """499 ``cancelled`` (reserved by the server; not sent by this version)."""

    default_code = "cancelled"
    default_status = 499


class APIConnectionError(RealmError):
    """The server could not be reached, went away, or answered something unreadable."""

    default_code = "connection_error"


class APITimeoutError(APIConnectionError):
    """No answer within the client's timeout."""

    default_code = "timeout"


class ProtocolError(APIConnectionError):
    """The server's bytes or messages break the HTTP/SSE or realm.v1 protocol."""

    default_code = "protocol_error"


class ConnectionClosedError(APIConnectionError):
    """The realm.v1 WebSocket closed (``close_code``: 1001 going away, 1006 lost, 1009 too big,
    4001 slow consumer, 4002 idle, 4003 protocol error); every request in flight on it fails
    with this error."""

    default_code = "connection_closed"

    def __init__(self, message: str, *, close_code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.close_code = close_code
        self.reason = reason


_BY_CODE: dict[str, type[RealmError]] = {
    "invalid_request": BadRequestError,
    "method_not_allowed": BadRequestError,
    "context_length_exceeded": ContextLengthError,
    "payload_too_large": PayloadTooLargeError,
    "invalid_api_key": AuthenticationError,
    "model_not_allowed": PermissionDeniedError,
    "model_not_found": NotFoundError,
    "not_found": NotFoundError,
    "rate_limit_exceeded": RateLimitError,
    "server_overloaded": OverloadedError,
    "shutting_down": ShuttingDownError,
    "cancelled": RequestCancelledError,
    "internal": InternalServerError,
}

_BY_STATUS: dict[int, type[RealmError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: BadRequestError,
    413: PayloadTooLargeError,
    429: RateLimitError,
}


def error_from_code(
    code: str | None,
    message: str,
    *,
    status: int | None = None,
    param: str | None = None,
    retry_after: float | None = None,
    body: Any = None,
    request_id: str | None = None,
) -> RealmError:
    """The typed error for a server error code (an unknown code is treated as ``internal``)."""
    cls = _BY_CODE.get(code or "")
    if cls is None:
        cls = _BY_STATUS.get(status or 0, InternalServerError)
        if code is None:
            code = cls.default_code
    return cls(
        message,
        code=code,
        status=status,
        param=param,
        retry_after=retry_after,
        body=body,
        request_id=request_id,
    )


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: not sent by realm-server
    return max(seconds, 0.0)


def error_from_response(status: int, headers: Mapping[str, str], content: bytes) -> RealmError:
    """The typed error for an HTTP error response (OpenAI's error body, or anything else)."""
    retry_after = parse_retry_after(headers.get("retry-after"))
    request_id = headers.get("x-request-id")
    detail: Any = None
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        detail = body["error"]
    if detail is None:
        text = content[:200].decode("utf-8", "replace") or f"HTTP {status}"
        if status >= 500 and status not in (500, 503):
            return APIConnectionError(f"HTTP {status}: {text}", status=status, request_id=request_id)
        return error_from_code(None, text, status=status, retry_after=retry_after, body=body, request_id=request_id)
    code = detail.get("code") if isinstance(detail.get("code"), str) else None
    param = detail.get("param") if isinstance(detail.get("param"), str) else None
    message = str(detail.get("message") or f"HTTP {status}")
    return error_from_code(
        code, message, status=status, param=param, retry_after=retry_after, body=body, request_id=request_id
    )
