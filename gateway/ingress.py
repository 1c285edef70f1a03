"""Ingress dialects: how a client's body is read and how answers are written back to it.

An ``Ingress`` is the client-facing half of a dialect. ``parse`` validates a body into a
``Parsed`` request (errors are ``BadRequest`` naming the field); the ``*_translator`` and
``*_reply`` methods turn what an adapter returns into the client's wire format, either by
inspecting a same-dialect upstream's bytes on their way through or by encoding canonical
results.
"""

from __future__ import annotations

import os
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


class Parsed:
    """A validated request: its typed view, its raw body for pass-through, and its canonical
    form, each built only when first needed."""

    __slots__ = ("_canonical", "_raw", "body", "model", "stream", "typed", "wants_usage")

    def __init__(
        self, body: bytes, typed: Any, model: str, stream: bool, wants_usage: bool
    ) -> None:
        self.body = body
        self.typed = typed
        self.model = model
        self.stream = stream
        self.wants_usage = wants_usage
        self._raw: dict[str, Any] | None = None
        self._canonical: c.Request | None = None

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
        return Parsed(body, request, request.model, bool(request.stream), request.wants_usage)

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


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()
