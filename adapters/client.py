"""The client side of a dialect: how a caller's body is read and how answers are written back.

An ``Ingress`` is one dialect's client half. ``parse`` validates a body into a ``Parsed``
request (errors are ``adapters.errors.InvalidRequest`` naming the field); the ``*_translator``
and ``*_reply`` methods turn what an adapter returns into the caller's wire format, either by
inspecting a same-dialect upstream's bytes on their way through or by encoding canonical
results; ``passthrough_body`` is what goes to a same-dialect upstream (routing keys out,
overlay on), built anew and never mutated afterwards; ``prompt_texts`` and ``answer_texts``
read the text of a body and of the answer sent, to count tokens when no usage came back.

Also here, shared by every dialect: the checks on model names and the caller's fallback chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Protocol

import msgspec

from adapters import canonical as c
from adapters.base import StreamTranslator, decoded
from adapters.errors import CallerError, InvalidRequest
from adapters.features import RequestFeatures, features_from_canonical
from adapters.overlay import Overlay

MAX_MODEL_NAME_BYTES = 256
# A body's top-level members, each value kept as its JSON text.
_MEMBERS = msgspec.json.Decoder(dict[str, msgspec.Raw])


class Parsed:
    """A validated request: its typed view, its raw body for pass-through, and its canonical
    form, each built only when first needed.

    Routing: ``chain`` is the caller's own fallback chain (``models`` with ``route:
    "fallback"``, at the top level or inside ``extra_body``; ``routing_chain(body)`` reads it
    for any JSON dialect), None when it sent none, and ``routing_fields`` says the body holds
    those keys (stripped before it goes upstream).
    ``features`` computes ``RequestFeatures`` on first use, with the function the ingress gave
    (``None``: computed from the canonical request by the dispatcher). ``max_tokens`` is the
    caller's output limit, None when it set none.
    """

    __slots__ = (
        "_canonical",
        "_features",
        "_members",
        "_raw",
        "body",
        "chain",
        "features_of",
        "max_tokens",
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
        max_tokens: int | None = None,
        members: dict[str, msgspec.Raw] | None = None,
    ) -> None:
        self.body = body
        self.typed = typed
        self.model = model
        self.stream = stream
        self.wants_usage = wants_usage
        self.chain = chain
        self.routing_fields = routing_fields
        self.features_of = features_of
        self.max_tokens = max_tokens
        self._raw: dict[str, Any] | None = None
        self._members = members
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

    def raw(self) -> Mapping[str, Any]:
        """The body as the caller sent it, every field kept (unknown ones pass through to a
        same-dialect upstream). Read-only: a pass-through body is a new mapping built from it."""
        if self._raw is None:
            self._raw = msgspec.json.decode(self.body)
        return self._raw

    def members(self) -> dict[str, msgspec.Raw]:
        """A new mapping of the body's top-level members, each value left as the caller's
        JSON text (``msgspec.Raw``, re-encoded as it is): a pass-through that changes only
        top-level keys sends the body without decoding and re-encoding what is nested, which
        is nearly all of it (a 194 KB chat body: 86 + 6 µs, against 108 + 85 through ``raw``,
        and the 6 or 85 again for each fallback)."""
        if self._members is None:
            self._members = _MEMBERS.decode(self.body)
        return dict(self._members)

    def canonical(self, to_canonical: Callable[[Any], c.Request]) -> c.Request:
        """The canonical request, converted once."""
        if self._canonical is None:
            self._canonical = to_canonical(self.typed)
        return self._canonical


class Ingress(Protocol):
    """One dialect's client side, as the request pipeline drives it."""

    dialect: str

    def parse(self, body: bytes) -> Parsed: ...

    def to_canonical(self, parsed: Parsed) -> c.Request: ...

    def passthrough_body(self, parsed: Parsed, overlay: Overlay | None) -> Mapping[str, Any]: ...

    def passthrough_translator(self, parsed: Parsed, served_model: str) -> StreamTranslator: ...

    def canonical_translator(
        self, parsed: Parsed, served_model: str, response_id: str
    ) -> StreamTranslator: ...

    def passthrough_reply(self, body: bytes, served_model: str) -> tuple[bytes, c.Usage | None]: ...

    def canonical_reply(self, response: c.Response, served_model: str) -> bytes: ...

    def error_frame(self, error: CallerError) -> bytes: ...

    def prompt_texts(self, body: bytes) -> list[str]: ...

    def answer_texts(self, payloads: list[bytes]) -> list[str]: ...


class DialectIngress:
    """The ``Ingress`` steps every dialect does alike, from the functions a dialect names as it
    subclasses (``class OpenAIIngress(DialectIngress, dialect="openai", texts=texts, …)``):
    ``convert`` (its parsed request to canonical), ``overlay`` (a persona on a pass-through
    body), ``encode`` (a canonical response to its reply, as JSON-encodable values), its
    ``error_frame``, ``passthrough_reply`` where it has one, and ``texts``, the module with its
    ``prompt_texts`` and ``answer_texts``."""

    dialect: str
    convert: Callable[[Any], c.Request]
    overlay: Callable[[dict[str, Any], Overlay], dict[str, Any]]
    encode: Callable[[c.Response, str], Any]
    passthrough_reply: Callable[[bytes, str], tuple[bytes, c.Usage | None]]
    error_frame: Callable[[CallerError], bytes]
    prompt_texts: Callable[[bytes], list[str]]
    answer_texts: Callable[[list[bytes]], list[str]]

    def __init_subclass__(
        cls, *, dialect: str, texts: ModuleType, **functions: Callable[..., Any]
    ) -> None:
        super().__init_subclass__()
        cls.dialect = dialect
        functions |= {"prompt_texts": texts.prompt_texts, "answer_texts": texts.answer_texts}
        for name, function in functions.items():
            setattr(cls, name, staticmethod(function))

    def to_canonical(self, parsed: Parsed) -> c.Request:
        """The canonical request, converted once per request."""
        return parsed.canonical(self.convert)

    def passthrough_body(self, parsed: Parsed, overlay: Overlay | None) -> dict[str, Any]:
        """The caller's body for a same-dialect upstream, with the persona's overlay on.
        Without one it is ``parsed.members()``: read a member with ``adapters.base.decoded``."""
        if overlay is None:
            members = parsed.members()
            return without_routing_fields(members) if parsed.routing_fields else members
        return self.overlay(passthrough_base(parsed), overlay)

    def canonical_reply(self, response: c.Response, served_model: str) -> bytes:
        """A whole canonical answer in the dialect's reply shape."""
        return msgspec.json.encode(self.encode(response, served_model))


def validation_error(exc: msgspec.ValidationError) -> InvalidRequest:
    """A msgspec validation error as an ``InvalidRequest`` naming the field at fault."""
    message, _, where = str(exc).partition(" - at `$")
    field = where.rstrip("`").lstrip(".") or None
    if message.startswith("Object missing required field"):
        name = message.split("`")[1]
        field = f"{field}.{name}" if field else name
        return InvalidRequest(f"Missing required field '{field}'", param=field)
    detail = message.replace("Expected", "expected")
    return InvalidRequest(f"Invalid value for '{field}': {detail}" if field else detail,
                          param=field)


def decode_json(body: bytes, decoder: msgspec.json.Decoder[Any]) -> Any:
    """Decode a request body with a typed decoder, turning failures into clear 400s."""
    if not body.strip():
        raise InvalidRequest("Request body is empty: send a JSON object")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        if str(exc).startswith("Expected `object`, got"):
            raise InvalidRequest("Request body must be a JSON object") from exc
        raise validation_error(exc) from exc
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise InvalidRequest("Request body is nested too deeply") from exc


def check_model_name(name: str, param: str = "model") -> None:
    """Refuse a model name no model can have, before it reaches a header, a label or an
    upstream: over 256 bytes, or with control characters (a newline makes an illegal header)."""
    if len(name) > MAX_MODEL_NAME_BYTES or len(name.encode()) > MAX_MODEL_NAME_BYTES:
        raise InvalidRequest(
            f"'{param}' is longer than {MAX_MODEL_NAME_BYTES} bytes: no model has such a name",
            param=param,
        )
    if not name.isprintable():
        raise InvalidRequest(
            f"'{param}' holds control characters: name a model (GET /v1/models lists them)",
            param=param,
        )


class _Chain(msgspec.Struct):
    models: list[str] | None = None
    route: str | None = None


class _RoutingView(msgspec.Struct):
    """Only the routing keys of a body; everything else is skipped unread."""

    models: list[str] | None = None
    route: str | None = None
    extra_body: _Chain | None = None


_routing_view = msgspec.json.Decoder(_RoutingView)


def names_a_chain(members: Mapping[str, msgspec.Raw]) -> bool:
    """Whether a body's members hold ``models`` or ``route``, top level or in ``extra_body``
    (the members, not the whole body: a search of 200 KB for '"models"' took 120 µs, and any
    conversation quoting the word paid for a chain's decoding too)."""
    if "models" in members or "route" in members:
        return True
    extra = members.get("extra_body")
    if extra is None:
        return False
    text = memoryview(extra).tobytes()
    return b'"models"' in text or b'"route"' in text


def routing_chain(members: Mapping[str, msgspec.Raw]) -> list[str] | None:
    """The caller's fallback chain from ``models``/``route``, top level or in ``extra_body``.

    (The OpenAI SDK merges ``extra_body`` into the top level; other clients send it as is.)
    """
    routing = {key: members[key] for key in ("models", "route", "extra_body") if key in members}
    try:
        view = _routing_view.decode(msgspec.json.encode(routing))
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from exc
    models, route = view.models, view.route
    if view.extra_body is not None:
        models = models if models is not None else view.extra_body.models
        route = route if route is not None else view.extra_body.route
    if route is not None and route != "fallback":
        raise InvalidRequest(f"'route' must be \"fallback\", not {route!r}", param="route")
    if models is None:
        if route is not None:
            raise InvalidRequest("'route' is \"fallback\" but 'models' is missing: list the "
                                 "models to try in order", param="models")
        return None
    for index, name in enumerate(models):
        check_model_name(name, f"models[{index}]")
    return models


def parsed_json(body: bytes, typed: Any, model: str, stream: bool, wants_usage: bool, *,
                max_tokens: int | None,
                features_of: Callable[[Any], RequestFeatures] | None = None) -> Parsed:
    """A JSON dialect's validated body (an object: ``typed`` came from it) as ``Parsed``,
    with the caller's fallback chain read when the body names one (``models``/``route``)."""
    members = _MEMBERS.decode(body)
    routing_fields = names_a_chain(members)
    return Parsed(body, typed, model, stream, wants_usage,
                  chain=routing_chain(members) if routing_fields else None,
                  routing_fields=routing_fields, features_of=features_of, max_tokens=max_tokens,
                  members=members)


def without_routing_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``body`` without the gateway's own keys (``models``, ``route``), with
    ``extra_body`` unwrapped as the OpenAI SDK would have."""
    out = {k: v for k, v in body.items() if k not in ("models", "route", "extra_body")}
    extra = decoded(body.get("extra_body"))
    if isinstance(extra, dict):
        for key, value in extra.items():
            if key not in ("models", "route"):
                out.setdefault(key, value)
    return out


def passthrough_base(parsed: Parsed) -> dict[str, Any]:
    """A fresh top-level copy of the caller's body, routing keys out: what a dialect's overlay
    then changes (nested values are shared, never changed in place)."""
    raw = parsed.raw()
    return without_routing_fields(raw) if parsed.routing_fields else dict(raw)
