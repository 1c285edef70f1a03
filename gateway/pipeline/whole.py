"""Operations other than chat, answered whole by one upstream call: embeddings, rerank and
moderation (images next). Each is a ``WholeOperation``: the same pipeline as chat (intake,
plan within the operation's mode, admission, ONE attempt loop with fallbacks, settle), with
only its request type, its semantic checks and how its input is counted of its own.

The caller speaks the OpenAI dialect (Cohere/Jina's shape for rerank); the body goes to each
target's adapter through ``adapters.base.perform(adapter, operation, call)``: unchanged, model
renamed, to an openai-kind provider; translated by adapters whose provider speaks another
dialect. The answer comes back in the caller's shape; its usage is the upstream's, or counted
here with the tokenizer (and written into the answer) when the upstream reports none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import msgspec

from adapters import canonical as c
from adapters.base import Adapter, Call, RawReply, StreamTranslator, inspect_reply, perform
from adapters.client import (
    Parsed,
    check_model_name,
    decode_json,
    parsed_json,
    passthrough_base,
)
from adapters.errors import InvalidRequest
from adapters.features import RequestFeatures
from adapters.overlay import Overlay
from gateway.errors import GatewayError, from_invalid_request
from gateway.usage_estimate import SentBodies, count_tokens, load_tokenizer
from routers.catalog import Deployment
from routers.plan import Plan

_NO_FEATURES = RequestFeatures()


class _UsageView(msgspec.Struct):
    """Token counts as OpenAI (``prompt_tokens``), vLLM and Jina (``total_tokens``) or the
    Responses shape (``input_tokens``) report them for an input-only operation."""

    prompt_tokens: int = 0
    input_tokens: int = 0
    total_tokens: int = 0


class _ReplyView(msgspec.Struct):
    model: str = ""
    usage: _UsageView | None = None


_REPLY = msgspec.json.Decoder(_ReplyView)


def _usage(view: _UsageView) -> c.Usage:
    return c.Usage(input_tokens=view.prompt_tokens or view.input_tokens or view.total_tokens)


def with_usage(body: bytes, tokens: int) -> bytes:
    """``body`` (a JSON object) with an OpenAI ``usage`` member added, without re-encoding."""
    end = body.rstrip()
    if not end.endswith(b"}"):
        return body
    usage = b'"usage":{"prompt_tokens":%d,"total_tokens":%d}' % (tokens, tokens)
    head = end[:-1].rstrip()
    return head + (b"," if not head.endswith(b"{") else b"") + usage + b"}"


class WholeOperation:
    """An operation answered whole in the OpenAI dialect (see the module docstring).

    A subclass sets ``name`` (the operation, which is also the mode of the models it serves),
    ``request_type`` (a msgspec Struct with ``model``, validating the fields the gateway reads;
    others pass through), and may override ``check`` and ``input_tokens``."""

    name: str
    request_type: ClassVar[type[Any]]
    dialect = "openai"

    def __init__(self) -> None:
        self.mode = self.name
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self.request_type)

    # --- what a subclass gives ---

    def check(self, request: Any) -> None:
        """Refuse (``InvalidRequest``) what the types cannot express."""

    def input_tokens(self, body: Mapping[str, Any]) -> int:
        """The input's tokens, counted here when the upstream reports none."""
        return 0

    # --- parse ---

    def parse(self, body: bytes) -> Parsed:
        try:
            request = decode_json(body, self._decoder)
            check_model_name(request.model)
            self.check(request)
            return parsed_json(body, request, request.model, False, False, max_tokens=0)
        except InvalidRequest as invalid:
            raise from_invalid_request(invalid) from invalid

    def model(self, parsed: Parsed) -> str:
        return parsed.model

    def streamed(self, parsed: Parsed) -> bool:
        return False

    def chain(self, parsed: Parsed) -> list[str] | None:
        return parsed.chain

    def features(self, parsed: Parsed) -> Callable[[], RequestFeatures]:
        return lambda: _NO_FEATURES

    def output_cap(self, parsed: Parsed, overlay: Overlay | None) -> int | None:
        return 0  # nothing is generated but what the input pays for

    def output_units(self, parsed: Parsed) -> c.Usage | None:
        return None

    # --- encode ---

    def upstream(self, parsed: Parsed, plan: Plan, headers: dict[str, str]) -> WholeBody:
        return WholeBody(passthrough_base(parsed))

    async def send(self, adapter: Adapter, call: Call) -> RawReply:
        """The adapter's answer, with its usage counted here if it reported none."""
        reply = await perform(adapter, self.name, call)
        if b'"usage"' not in reply.body and call.raw is not None:
            await load_tokenizer()  # in a thread, once per process
            reply.body = with_usage(reply.body, self.input_tokens(call.raw))
        return reply

    def reply(self, reply: RawReply | Any, served: Deployment) -> tuple[bytes, c.Usage | None]:
        return inspect_reply(reply.body, served.id, _REPLY, _usage)

    def translator(
        self, adapter: Adapter, parsed: Parsed, served: Deployment, request_id: str
    ) -> StreamTranslator:
        raise NotImplementedError(f"{self.name} is never streamed")

    def error_body(self, error: GatewayError) -> bytes:
        return error.body(self.dialect)

    def error_frame(self, error: GatewayError) -> bytes:
        return error.body(self.dialect)

    # --- usage ---

    def estimate(self, body: bytes, sent: SentBodies | None) -> c.Usage:
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return c.Usage()
        return c.Usage(input_tokens=self.input_tokens(raw) if isinstance(raw, dict) else 0)


class WholeBody:
    """What one whole-answer request sends upstream: the caller's body, routing keys out
    (shared read-only by every target; each adapter renames the model in its own copy)."""

    __slots__ = ("raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def call(self, adapter: Adapter, target: Deployment, byok: dict[str, str]) -> Call:
        call = Call(model=target.upstream, stream=False, raw=self.raw)
        if byok:
            call.api_key = byok.get(target.provider)
        return call


def texts_tokens(value: Any) -> int:
    """Tokens of a string, or of the strings (and ``text`` members) of a list."""
    if isinstance(value, str):
        return count_tokens(value)
    if isinstance(value, list):
        return sum(texts_tokens(item) for item in value)
    if isinstance(value, dict):
        return texts_tokens(value.get("text"))
    return 0
