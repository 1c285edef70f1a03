"""What the dispatcher asks of a provider adapter, and what it gets back.

An adapter speaks one provider dialect (``dialect``). When the caller speaks the same dialect,
the call is a pass-through: ``Call.raw`` is the caller's body (model rewritten), and the answer
comes back as the provider's own bytes (``RawReply`` or raw SSE events), untouched. Otherwise
``Call.request`` holds the canonical request and the answer is canonical (``Response`` or
``StreamEvent`` items).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import msgspec

from adapters.canonical import Request, Response, StreamEvent, Usage
from adapters.errors import CallerError, ProviderHTTPError, ProviderProtocolError


@dataclass(slots=True)
class Call:
    """One request to one provider for one upstream model."""

    model: str
    stream: bool
    # Read-only: one body serves every fallback. A chat body's values may be JSON text
    # (``msgspec.Raw``, sent as it is): read one with ``decoded``.
    raw: Mapping[str, Any] | None = None
    request: Request | None = None
    headers: dict[str, str] = field(default_factory=dict)
    api_key: str | None = None  # a caller's own provider key (BYOK) instead of the pool's


@dataclass(slots=True)
class RawReply:
    """A non-streamed pass-through answer: the provider's body, as it sent it."""

    body: bytes


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """What an adapter needs to know about the provider it talks to."""

    name: str
    base_url: str = ""
    api_key: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    tokens_per_second: float = 0.0
    # An OpenAI provider that also serves the Responses API (POST {base_url}/responses).
    responses_api: bool = False
    # How an OpenAI-compatible provider names the output cap of a translated request: OpenAI's
    # reasoning models refuse "max_tokens"; many compatible servers know only "max_tokens".
    max_tokens_field: str = "max_tokens"


class Adapter(Protocol):
    """A provider client. ``stream`` yields raw SSE events (bytes) on pass-through calls and
    canonical events otherwise."""

    dialect: str

    async def complete(self, call: Call) -> RawReply | Response: ...

    def stream(self, call: Call) -> AsyncIterator[bytes | StreamEvent]: ...


class Performer(Protocol):
    """An adapter that also serves operations other than chat (``modes`` beyond ``chat``).

    ``perform`` sends one whole-answer operation (``"embeddings"``, ``"rerank"``,
    ``"moderation"``…, named as the mode of the models it serves): ``call.raw`` is the
    caller's body in the gateway's client shape for it (OpenAI's; Cohere/Jina's for rerank),
    and the answer comes back in that same shape, translated by the adapter when its provider
    speaks another (Gemini's ``batchEmbedContents``)."""

    modes: tuple[str, ...]

    async def perform(self, operation: str, call: Call) -> RawReply: ...


async def perform(adapter: Adapter, operation: str, call: Call) -> RawReply:
    """``adapter.perform(operation, call)``, or a 400 naming the provider when its kind has no
    such operation (a ``<provider>/<model>`` name the catalog does not list)."""
    if operation not in getattr(adapter, "modes", ("chat",)) or not hasattr(adapter, "perform"):
        name = getattr(getattr(adapter, "settings", None), "name", adapter.dialect)
        raise ProviderHTTPError(
            400, f"provider '{name}' (a {adapter.dialect} provider) has no {operation} API"
        )
    performer: Performer = adapter  # type: ignore[assignment]
    return await performer.perform(operation, call)


def speaks(adapter: Adapter, dialect: str) -> bool:
    """True when ``adapter`` takes a caller's body of ``dialect`` as it is (a pass-through
    call): its own dialect, or one it declares in ``also_speaks``."""
    return adapter.dialect == dialect or dialect in getattr(adapter, "also_speaks", ())


class StreamTranslator(Protocol):
    """Turns what an adapter streams into the caller's SSE bytes, one item at a time.

    ``committed`` turns true at the first piece of content; ``usage`` is the latest usage seen.
    """

    committed: bool
    usage: Usage | None

    def feed(self, item: bytes | StreamEvent) -> bytes: ...

    def close(self) -> bytes: ...


@runtime_checkable
class FailingTranslator(Protocol):
    """A translator that ends a stream broken after its commit point in its own terms, from
    the stream's state (the Responses API: ``error``, then ``response.failed`` carrying the
    response so far); other streams end with their ingress's stateless ``error_frame``."""

    def fail(self, error: CallerError) -> bytes: ...



def inspect_reply(
    body: bytes,
    served_model: str,
    view: msgspec.json.Decoder[Any],
    to_usage: Any,
) -> tuple[bytes, Usage | None]:
    """A same-dialect answer renamed to ``served_model`` (one byte replacement of the upstream's
    model string, no re-encoding) and its usage, read through ``view`` (a decoder of a Struct
    with ``model`` and ``usage``) and converted by ``to_usage``."""
    try:
        reply = view.decode(body)
    except msgspec.DecodeError as exc:
        raise ProviderProtocolError(f"malformed response body: {exc}") from exc
    if reply.model and reply.model != served_model:
        body = body.replace(msgspec.json.encode(reply.model), msgspec.json.encode(served_model), 1)
    return body, (to_usage(reply.usage) if reply.usage else None)


def has_value(raw: msgspec.Raw) -> bool:
    """True when a ``Raw`` field was present and not null."""
    return len(raw) > 0 and bytes(raw) != b"null"


T = TypeVar("T")


def readable(payloads: Iterable[bytes], decoder: msgspec.json.Decoder[T]) -> Iterator[T]:
    """Each payload decoded by ``decoder``; one it cannot read is skipped (for estimates, where
    a malformed frame counts for nothing rather than failing the count)."""
    for payload in payloads:
        try:
            yield decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue


def decoded(value: Any) -> Any:
    """A member of ``Call.raw`` as Python values: the body comes decoded, or as its top-level
    members with their values as JSON text (``msgspec.Raw``, ``Parsed.members``)."""
    return msgspec.json.decode(value) if isinstance(value, msgspec.Raw) else value
