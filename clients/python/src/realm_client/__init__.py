"""realm-client: a Python client of realm-server (OpenAI's HTTP API and the realm.v1 WebSocket)."""

from ._async_client import AsyncClient, AsyncStream
from ._client import Client, Stream
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConnectionClosedError,
    ContextLengthError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RealmError,
    RequestCancelledError,
    ShuttingDownError,
)
from ._types import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChoiceDelta,
    ChunkChoice,
    Completion,
    CompletionChoice,
    Created,
    Delta,
    Done,
    DoneChoice,
    Health,
    Hello,
    Model,
    ModelList,
    RequestResult,
    ResultChoice,
    Timings,
    Usage,
)
from ._ws import AsyncConnection, AsyncRequestStream, Connection, RequestStream

__version__ = "0.1.0"

__all__ = [
    "Client", "AsyncClient", "Stream", "AsyncStream",
    "Connection", "AsyncConnection", "RequestStream", "AsyncRequestStream",
    "RealmError", "BadRequestError", "ContextLengthError", "PayloadTooLargeError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "RateLimitError", "OverloadedError", "ShuttingDownError",
    "InternalServerError", "RequestCancelledError", "APIConnectionError", "APITimeoutError", "ProtocolError",
    "ConnectionClosedError",
    "ChatCompletion", "ChatChoice", "ChatCompletionMessage", "ChatCompletionChunk", "ChunkChoice", "ChoiceDelta",
    "Completion", "CompletionChoice", "Usage", "Timings", "Model", "ModelList", "Health",
    "Hello", "Created", "Delta", "Done", "DoneChoice", "RequestResult", "ResultChoice",
]
