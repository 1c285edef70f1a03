"""Ingress dialects: how a client's body is read and how answers are written back to it.

An ``Ingress`` is the client-facing half of a dialect. ``parse`` validates a body into a
``Parsed`` request (errors are ``BadRequest`` naming the field); the ``*_translator`` and
``*_reply`` methods turn what an adapter returns into the client's wire format, either by
inspecting a same-dialect upstream's bytes on their way through or by encoding canonical
results.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from adapters import canonical as c
from adapters.base import StreamTranslator
from adapters.openai import (
    REQUEST_ROLES,
    ChatRequest,
    OpenAIPassthrough,
    OpenAIStreamEncoder,
    canonical_to_openai_response,
    inspect_openai_response,
    openai_error_frame,
    openai_to_canonical,
)
from gateway.errors import BadRequest, GatewayError
from routers.features import RequestFeatures, features_from_canonical


class Parsed:
    """A validated request: its typed view, its raw body for pass-through, and its canonical
    form, each built only when first needed.

    Routing: ``chain`` is the caller's own fallback chain (``models`` with ``route:
    "fallback"``, at the top level or inside ``extra_body``; ``routing_chain(body)`` reads it
    for any JSON dialect), None when it sent none, and ``routing_fields`` says the body holds
    those keys (stripped before it goes upstream).
    ``features`` computes ``routers.features.RequestFeatures`` on first use, with the function
    the ingress gave (``None``: computed from the canonical request by the dispatcher).
    """

    __slots__ = (
        "_canonical",
        "_features",
        "_raw",
        "body",
        "chain",
        "features_of",
        "model",
        "routing_fields",
        "stream",
        "typed",
        "wants_usage",
    )

    def __init__(
        self,
        body: bytes,
        typed: Any,
        model: str,
        stream: bool,
        wants_usage: bool,
        *,
        chain: list[str] | None = None,
        routing_fields: bool = False,
        features_of: Callable[[Any], RequestFeatures] | None = None,
    ) -> None:
        self.body = body
        self.typed = typed
        self.model = model
        self.stream = stream
        self.wants_usage = wants_usage
        self.chain = chain
        self.routing_fields = routing_fields
        self.features_of = features_of
        self._raw: dict[str, Any] | None = None
        self._canonical: c.Request | None = None
        self._features: RequestFeatures | None = None

    def features(self, fallback: Callable[[], c.Request]) -> RequestFeatures:
        """The routing features, computed once; ``fallback`` gives the canonical request when
        the ingress has no cheaper way."""
        if self._features is None:
            if self.features_of is not None:
                self._features = self.features_of(self.typed)
            else:
                self._features = features_from_canonical(fallback())
        return self._features

    def raw(self) -> dict[str, Any]:
        """The body as the client sent it, as a dict (the adapter may rewrite ``model``)."""
        if self._raw is None:
            self._raw = msgspec.json.decode(self.body)
        return self._raw

    def canonical(self, to_canonical: Any) -> c.Request:
        if self._canonical is None:
            self._canonical = to_canonical(self.typed)
        return self._canonical


def validation_error(exc: msgspec.ValidationError) -> BadRequest:
    """A msgspec validation error as a BadRequest naming the field at fault."""
    message, _, where = str(exc).partition(" - at `$")
    field = where.rstrip("`").lstrip(".") or None
    if message.startswith("Object missing required field"):
        name = message.split("`")[1]
        field = f"{field}.{name}" if field else name
        return BadRequest(f"Missing required field '{field}'", param=field)
    detail = message.replace("Expected", "expected")
    return BadRequest(f"Invalid value for '{field}': {detail}" if field else detail, param=field)


def decode_json(body: bytes, decoder: msgspec.json.Decoder[Any]) -> Any:
    """Decode a request body with a typed decoder, turning failures into clear 400s."""
    if not body.strip():
        raise BadRequest("Request body is empty: send a JSON object")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        if str(exc).startswith("Expected `object`, got"):
            raise BadRequest("Request body must be a JSON object") from exc
        raise validation_error(exc) from exc
    except msgspec.DecodeError as exc:
        raise BadRequest(f"Request body is not valid JSON ({exc})") from exc


class Ingress(Protocol):
    dialect: str

    def parse(self, body: bytes) -> Parsed: ...

    def to_canonical(self, parsed: Parsed) -> c.Request: ...

    def passthrough_translator(self, parsed: Parsed, served_model: str) -> StreamTranslator: ...

    def canonical_translator(
        self, parsed: Parsed, served_model: str, response_id: str
    ) -> StreamTranslator: ...

    def passthrough_reply(self, body: bytes, served_model: str) -> tuple[bytes, c.Usage | None]: ...

    def canonical_reply(self, response: c.Response, served_model: str) -> bytes: ...

    def error_frame(self, error: GatewayError) -> bytes: ...


_chat_request = msgspec.json.Decoder(ChatRequest)


class OpenAIIngress:
    """``POST /v1/chat/completions``."""

    dialect = "openai"

    def parse(self, body: bytes) -> Parsed:
        request: ChatRequest = decode_json(body, _chat_request)
        if not request.model:
            raise BadRequest(
                "'model' is empty: name a model (GET /v1/models lists them)", param="model"
            )
        if not request.messages:
            raise BadRequest("'messages' is empty: send at least one message", param="messages")
        for index, message in enumerate(request.messages):
            if message.role not in REQUEST_ROLES:
                roles = ", ".join(sorted(REQUEST_ROLES))
                raise BadRequest(
                    f"messages[{index}].role: {message.role!r} is not one of {roles}",
                    param=f"messages[{index}].role",
                )
        if request.n is not None and request.n < 1:
            raise BadRequest("'n' must be at least 1", param="n")
        chain: list[str] | None = None
        routing_fields = b'"models"' in body or b'"route"' in body
        if routing_fields:
            chain = routing_chain(body)
        return Parsed(
            body,
            request,
            request.model,
            bool(request.stream),
            request.wants_usage,
            chain=chain,
            routing_fields=routing_fields,
            features_of=openai_features,
        )

    def to_canonical(self, parsed: Parsed) -> c.Request:
        return parsed.canonical(openai_to_canonical)

    def passthrough_translator(self, parsed: Parsed, served_model: str) -> StreamTranslator:
        return OpenAIPassthrough(served_model, parsed.wants_usage)

    def canonical_translator(
        self, parsed: Parsed, served_model: str, response_id: str
    ) -> StreamTranslator:
        return OpenAIStreamEncoder(response_id, served_model, parsed.wants_usage)

    def passthrough_reply(self, body: bytes, served_model: str) -> tuple[bytes, c.Usage | None]:
        return inspect_openai_response(body, served_model)

    def canonical_reply(self, response: c.Response, served_model: str) -> bytes:
        return msgspec.json.encode(canonical_to_openai_response(response, served_model))

    def error_frame(self, error: GatewayError) -> bytes:
        return openai_error_frame(error.openai_body())


class _Chain(msgspec.Struct):
    models: list[str] | None = None
    route: str | None = None


class _RoutingView(msgspec.Struct):
    """Only the routing keys of a body; everything else is skipped unread."""

    models: list[str] | None = None
    route: str | None = None
    extra_body: _Chain | None = None


_routing_view = msgspec.json.Decoder(_RoutingView)


def routing_chain(body: bytes) -> list[str] | None:
    """The caller's fallback chain from ``models``/``route``, top level or in ``extra_body``.

    (The OpenAI SDK merges ``extra_body`` into the top level; other clients send it as is.)
    """
    try:
        view = _routing_view.decode(body)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from exc
    models, route = view.models, view.route
    if view.extra_body is not None:
        models = models if models is not None else view.extra_body.models
        route = route if route is not None else view.extra_body.route
    if route is not None and route != "fallback":
        raise BadRequest(f"'route' must be \"fallback\", not {route!r}", param="route")
    if models is None:
        if route is not None:
            raise BadRequest("'route' is \"fallback\" but 'models' is missing: list the "
                             "models to try in order", param="models")
        return None
    return models


def openai_features(request: ChatRequest) -> RequestFeatures:
    """Routing features of an OpenAI chat request, in one walk over its messages."""
    chars = 0
    images = 0
    audio = False
    last_user: str | list[dict[str, Any]] | None = None
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            chars += len(content)
        elif content:
            for part in content:
                kind = part.get("type")
                if kind == "text":
                    part_text = part.get("text")
                    chars += len(part_text) if isinstance(part_text, str) else 0
                elif kind == "image_url":
                    images += 1
                elif kind in ("input_audio", "audio"):
                    audio = True
        for call in message.tool_calls or ():
            chars += len(call.function.arguments)
        if message.role == "user":
            last_user = content

    def text() -> str:
        if isinstance(last_user, str):
            return last_user
        if not last_user:
            return ""
        return "\n".join(
            str(p.get("text", "")) for p in last_user if p.get("type") == "text"
        )

    return RequestFeatures(
        has_tools=bool(request.tools),
        has_audio=audio,
        prompt_chars=chars,
        images=images,
        max_output=request.output_limit,
        text=text,
    )


_bits = random.getrandbits


def new_request_id() -> str:
    """``req_`` and 96 random bits in hex, from ``random`` (seeded from ``os.urandom``,
    reseeded in forked children), not ``os.urandom``: an id must be unique, not secret (a
    usage lookup by id is scoped to the caller's own rows), and the system call per request
    showed up in the server's profile (~4% of the samples under load)."""
    return f"req_{_bits(96):024x}"
