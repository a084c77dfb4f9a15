"""Result types. Field names follow OpenAI's objects (and realm.v1's messages); unknown fields
from the server are ignored, missing ones take their defaults."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

T = TypeVar("T")

_HINTS: dict[type, dict[str, Any]] = {}


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], value) if len(args) == 1 else value
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_convert(item, v) for v in value] if isinstance(value, list) else value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_dict(tp, value) if isinstance(value, dict) else value
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build the dataclass ``cls`` from a decoded JSON object (recursively)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


@dataclass
class Timings:
    """llama-server's timings of one choice, in milliseconds."""

    queue_ms: float = 0.0
    prompt_n: int = 0
    cache_n: int = 0
    prompt_ms: float = 0.0
    prompt_per_token_ms: float = 0.0
    prompt_per_second: float = 0.0
    ttft_ms: float = 0.0
    predicted_n: int = 0
    predicted_ms: float = 0.0
    predicted_per_token_ms: float = 0.0
    predicted_per_second: float = 0.0
    preemptions: int = 0
    #: prompt-lookup draft tokens proposed, and accepted (``--draft-max``)
    draft_n: int = 0
    draft_n_accepted: int = 0


@dataclass
class PromptTokensDetails:
    cached_tokens: int = 0


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None


@dataclass
class TopLogprob:
    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None


@dataclass
class TokenLogprob:
    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] = field(default_factory=list)


@dataclass
class ChatLogprobs:
    content: list[TokenLogprob] = field(default_factory=list)


@dataclass
class ChatCompletionMessage:
    role: str = "assistant"
    content: str | None = None


@dataclass
class ChatChoice:
    index: int = 0
    message: ChatCompletionMessage = field(default_factory=ChatCompletionMessage)
    logprobs: ChatLogprobs | None = None
    finish_reason: str | None = None


@dataclass
class ChatCompletion:
    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[ChatChoice] = field(default_factory=list)
    usage: Usage | None = None
    system_fingerprint: str | None = None
    timings: list[Timings] = field(default_factory=list)


@dataclass
class ChoiceDelta:
    role: str | None = None
    content: str | None = None


@dataclass
class ChunkChoice:
    index: int = 0
    delta: ChoiceDelta = field(default_factory=ChoiceDelta)
    logprobs: ChatLogprobs | None = None
    finish_reason: str | None = None


@dataclass
class ChatCompletionChunk:
    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    system_fingerprint: str | None = None
    choices: list[ChunkChoice] = field(default_factory=list)
    usage: Usage | None = None
    timings: Timings | None = None


@dataclass
class CompletionLogprobs:
    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[dict[str, float]] = field(default_factory=list)
    text_offset: list[int] = field(default_factory=list)


@dataclass
class CompletionChoice:
    index: int = 0
    text: str = ""
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None


@dataclass
class Completion:
    """A completion, or (streamed) one chunk of it: OpenAI streams completions as objects of
    the same shape. A streamed chunk's ``timings`` is one object, a whole answer's a list."""

    id: str = ""
    object: str = "text_completion"
    created: int = 0
    model: str = ""
    system_fingerprint: str | None = None
    choices: list[CompletionChoice] = field(default_factory=list)
    usage: Usage | None = None
    timings: Any = None


@dataclass
class Model:
    id: str = ""
    object: str = "model"
    created: int = 0
    owned_by: str = ""
    max_model_len: int | None = None


@dataclass
class ModelList:
    object: str = "list"
    data: list[Model] = field(default_factory=list)

    def __iter__(self) -> typing.Iterator[Model]:
        return iter(self.data)


@dataclass
class Health:
    """``GET /health``: ``ok`` (200), ``loading`` or ``draining`` (503)."""

    status: str = ""
    ok: bool = False


# ---- realm.v1 ---------------------------------------------------------------------------------


@dataclass
class Hello:
    protocol: str = ""
    server: str = ""
    model: str = ""
    max_in_flight: int = 0
    max_message_bytes: int = 0
    idle_timeout_s: int = 0


@dataclass
class Created:
    id: str = ""
    model: str = ""
    prompt_tokens: int = 0


@dataclass
class Delta:
    """New text of one choice (``index``) of a realm.v1 request. ``text`` may be empty."""

    id: str = ""
    index: int = 0
    text: str = ""
    tokens: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None


@dataclass
class DoneChoice:
    index: int = 0
    finish_reason: str = "stop"
    timings: Timings | None = None


@dataclass
class Done:
    id: str = ""
    choices: list[DoneChoice] = field(default_factory=list)
    usage: Usage | None = None


@dataclass
class ResultChoice:
    index: int
    text: str
    finish_reason: str
    timings: Timings | None


@dataclass
class RequestResult:
    """A finished realm.v1 request: every choice's whole text, finish reason and timings."""

    id: str
    model: str
    choices: list[ResultChoice]
    usage: Usage | None

    @property
    def text(self) -> str:
        """The first choice's text."""
        return self.choices[0].text if self.choices else ""
