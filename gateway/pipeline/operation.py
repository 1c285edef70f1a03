"""What an operation supplies to the pipeline: its parse, its encodings and its usage.

The pipeline (intake, dispatch, streaming, settle) is the same for every operation; an
``Operation`` knows only its own wire formats. ``ChatOperation`` serves chat completions in one
ingress dialect (OpenAI or Anthropic) over the dialect's ``Ingress`` (the Responses API is
chat in the ``responses`` dialect); operations answered whole by one upstream call
(embeddings, rerank, moderation, images) are ``gateway.pipeline.whole.WholeOperation``s.

``name`` is what the ledger and the metrics record; ``mode`` the mode of the models the
operation serves (``routers.catalog.MODES``): the planner refuses, and routing never reaches,
a model of another mode.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

import msgspec
from msgspec import UNSET

from adapters import canonical as c
from adapters.base import Adapter, Call, RawReply, StreamTranslator, speaks
from adapters.client import Ingress, Parsed
from adapters.errors import InvalidRequest
from adapters.features import RequestFeatures
from adapters.overlay import Overlay, apply_to_canonical
from gateway.errors import GatewayError, from_invalid_request
from gateway.usage_estimate import SentBodies, estimate_usage, max_tokens_of
from routers.catalog import Deployment
from routers.plan import Plan


class Upstream(Protocol):
    """One request's upstream bodies, prepared once however many targets it tries."""

    def call(self, adapter: Adapter, target: Deployment, byok: dict[str, str]) -> Call: ...


class Operation(Protocol):
    """An operation of the gateway in one client dialect (see the module docstring)."""

    name: str
    mode: str
    dialect: str

    # --- parse ---
    def parse(self, body: bytes) -> Any: ...

    def model(self, parsed: Any) -> str: ...

    def streamed(self, parsed: Any) -> bool: ...

    def chain(self, parsed: Any) -> list[str] | None: ...

    def features(self, parsed: Any) -> Callable[[], RequestFeatures]: ...

    def output_cap(self, parsed: Any, overlay: Overlay | None) -> int | None: ...

    def output_units(self, parsed: Any) -> c.Usage | None:
        """At most what the call makes besides tokens (images), which admission reserves the
        price of; None for operations that make only tokens."""
        ...

    # --- encode ---
    def upstream(self, parsed: Any, plan: Plan, headers: dict[str, str]) -> Upstream: ...

    async def send(self, adapter: Adapter, call: Call) -> RawReply | Any:
        """One whole-answer call to ``adapter`` (streams go through ``adapter.stream``)."""
        ...

    def reply(self, reply: RawReply | Any, served: Deployment) -> tuple[bytes, c.Usage | None]: ...

    def translator(
        self, adapter: Adapter, parsed: Any, served: Deployment, request_id: str
    ) -> StreamTranslator: ...

    def error_body(self, error: GatewayError) -> bytes: ...

    def error_frame(self, error: GatewayError) -> bytes: ...

    # --- usage ---
    def estimate(self, body: bytes, sent: SentBodies | None) -> c.Usage: ...


class ChatOperation:
    """Chat completions in the dialect of ``ingress``."""

    mode = "chat"

    def __init__(self, ingress: Ingress) -> None:
        self.ingress = ingress
        self.dialect = ingress.dialect
        # The Responses API is an operation of its own in the ledger and the metrics.
        self.name = "responses" if ingress.dialect == "responses" else "chat"

    def parse(self, body: bytes) -> Parsed:
        try:
            return self.ingress.parse(body)
        except InvalidRequest as invalid:
            raise from_invalid_request(invalid) from invalid

    def model(self, parsed: Parsed) -> str:
        return parsed.model

    def streamed(self, parsed: Parsed) -> bool:
        return parsed.stream

    def chain(self, parsed: Parsed) -> list[str] | None:
        return parsed.chain

    def features(self, parsed: Parsed) -> Callable[[], RequestFeatures]:
        ingress = self.ingress
        return lambda: parsed.features(lambda: ingress.to_canonical(parsed))

    def output_cap(self, parsed: Parsed, overlay: Overlay | None) -> int | None:
        return max_tokens_of(parsed, overlay)

    def output_units(self, parsed: Parsed) -> c.Usage | None:
        return None

    def upstream(self, parsed: Parsed, plan: Plan, headers: dict[str, str]) -> ChatBodies:
        return ChatBodies(parsed, self.ingress, plan.overlay, headers)

    def send(self, adapter: Adapter, call: Call) -> Coroutine[Any, Any, RawReply | c.Response]:
        return adapter.complete(call)  # the adapter's own coroutine: one frame less to resume

    def reply(
        self, reply: RawReply | c.Response, served: Deployment
    ) -> tuple[bytes, c.Usage | None]:
        if isinstance(reply, RawReply):
            return self.ingress.passthrough_reply(reply.body, served.id)
        return self.ingress.canonical_reply(reply, served.id), reply.usage

    def translator(
        self, adapter: Adapter, parsed: Parsed, served: Deployment, request_id: str
    ) -> StreamTranslator:
        if speaks(adapter, self.dialect):
            return self.ingress.passthrough_translator(parsed, served.id)
        return self.ingress.canonical_translator(parsed, served.id, request_id)

    def error_body(self, error: GatewayError) -> bytes:
        return error.body(self.dialect)

    def error_frame(self, error: GatewayError) -> bytes:
        return self.ingress.error_frame(error)

    def estimate(self, body: bytes, sent: SentBodies | None) -> c.Usage:
        return estimate_usage(self.ingress, body, sent)


class ChatBodies:
    """What one chat request sends upstream: the caller's body (routing keys stripped,
    overlay applied; read-only, so no fallback sees another's changes) for a same-dialect
    adapter, or its canonical form, each built once."""

    __slots__ = ("_canonical", "_raw", "dialect", "headers", "ingress", "overlay", "parsed")

    def __init__(
        self, parsed: Parsed, ingress: Ingress, overlay: Overlay | None, headers: dict[str, str]
    ) -> None:
        self.parsed = parsed
        self.ingress = ingress
        self.dialect = ingress.dialect
        self.overlay = overlay
        self.headers = headers
        self._raw: Mapping[str, Any] | None = None
        self._canonical: c.Request | None = None

    def call(self, adapter: Adapter, target: Deployment, byok: dict[str, str]) -> Call:
        """The call to ``target`` through ``adapter``, on the caller's own key if it has one."""
        stream = self.parsed.stream
        if speaks(adapter, self.dialect):
            if self._raw is None:
                self._raw = self.ingress.passthrough_body(self.parsed, self.overlay)
            call = Call(model=target.upstream, stream=stream, raw=self._raw,
                        headers=self.headers)
        else:
            request = fit_to_model(self._canonical_request(), target)
            call = Call(model=target.upstream, stream=stream, request=request,
                        headers=self.headers)
        if byok:
            call.api_key = byok.get(target.provider)
        return call

    def _canonical_request(self) -> c.Request:
        if self._canonical is None:
            request = self.ingress.to_canonical(self.parsed)
            if self.overlay is not None:
                request = apply_to_canonical(request, self.overlay)
            self._canonical = request
        return self._canonical


def fit_to_model(request: c.Request, target: Deployment) -> c.Request:
    """A translated request trimmed to what ``target`` takes: no more output tokens than its
    ``max_output`` (Claude Code asks 32000 of every model), and no reasoning controls for a
    listed model without the ``reasoning`` capability (gpt-4o refuses ``reasoning_effort``)."""
    changes: dict[str, Any] = {}
    if request.max_tokens is not UNSET and request.max_tokens > target.max_output > 0:
        changes["max_tokens"] = target.max_output
    if request.reasoning is not UNSET and target.listed and "reasoning" not in target.capabilities:
        changes["reasoning"] = UNSET
    return msgspec.structs.replace(request, **changes) if changes else request
