"""The built-in ``mock`` provider: deterministic answers with no network and no key.

Models (the catalog's ``upstream`` name):

* ``echo``: answers with the text of the last user message, cut at ``max_tokens`` words.
* ``lorem`` (and any other name): deterministic prose, ``max_tokens`` words long (64 if unset).
* ``fail``: always answers HTTP 503, before any token: a model to try fallback chains with.

An answer cut by ``max_tokens`` says so (``stop_reason`` ``max_tokens``: OpenAI's
``finish_reason: "length"``), as a real model's would; lorem always runs to its limit, so it is
cut whenever the caller set one. Each answer has an id of its own.

With tools offered and a tool required (``tool_choice`` required or naming one), it calls that
tool (or the first) with empty arguments. ``tokens_per_second`` paces streamed words so a
stream takes as long as a real one would.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator

from msgspec import UNSET

from adapters import canonical as c
from adapters.base import Call, ProviderSettings, RawReply
from adapters.errors import InvalidRequest, ProviderHTTPError
from adapters.mock.operations import OPERATIONS

_WORDS = (
    "the gateway answers every request with steady deterministic text so tests and benchmarks "
    "see the same tokens each time while nothing leaves this machine and no key is needed"
).split()
DEFAULT_LENGTH = 64


def estimate_tokens(text: str) -> int:
    """About four characters a token: the mock's own count, not a real tokenizer's."""
    return max(1, (len(text) + 3) // 4) if text else 0


def _prompt_text(request: c.Request) -> str:
    parts = [block.text for block in request.system]
    for message in request.messages:
        for block in message.content:
            if isinstance(block, c.TextBlock):
                parts.append(block.text)
            elif isinstance(block, c.ToolResultBlock):
                parts.extend(b.text for b in block.content if isinstance(b, c.TextBlock))
    return "\n".join(parts)


def _last_user_text(request: c.Request) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            texts = [b.text for b in message.content if isinstance(b, c.TextBlock)]
            if texts:
                return "\n".join(texts)
    return ""


def _answer_words(model: str, request: c.Request) -> tuple[list[str], c.StopReason]:
    """The answer's words, and why it stopped: at its end, or cut by ``max_tokens``."""
    limit = request.max_tokens if request.max_tokens is not UNSET else None
    if model == "echo":
        text = _last_user_text(request)
        # Keep whitespace with the words so the echo is exact.
        words = text.split(" ")
        words = [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)] if text else []
        if limit is not None and len(words) > limit:
            return words[: max(limit, 0)], "max_tokens"
        return words, "end_turn"
    length = limit if limit is not None else DEFAULT_LENGTH
    words = [
        _WORDS[i % len(_WORDS)] + ("." if i == length - 1 else " ") for i in range(max(length, 0))
    ]
    return words, "end_turn" if limit is None else "max_tokens"


def _response_id() -> str:
    """A fresh id per answer (ids need be unique, not secret)."""
    return f"mock-{random.getrandbits(96):024x}"


def _tool_call(request: c.Request) -> c.ToolUseBlock | None:
    if request.tools is UNSET or not request.tools or request.tool_choice is UNSET:
        return None
    choice = request.tool_choice
    if choice.mode == "required":
        name = request.tools[0].name
    elif choice.mode == "tool" and choice.name is not UNSET:
        name = choice.name
    else:
        return None
    call_id = "call_" + hashlib.sha1(name.encode()).hexdigest()[:16]
    return c.ToolUseBlock(id=call_id, name=name, input={})


class MockProvider:
    """Answers from the rules above, instantly or at ``tokens_per_second``."""

    dialect = "mock"
    modes = ("chat", *OPERATIONS)

    def __init__(self, settings: ProviderSettings, client: object = None) -> None:
        self.delay = 1.0 / settings.tokens_per_second if settings.tokens_per_second > 0 else 0.0

    @staticmethod
    def _request(call: Call) -> c.Request:
        if call.model == "fail":
            raise ProviderHTTPError(503, "the mock model 'fail' always fails (to show fallback)")
        if call.request is None:
            raise ValueError("the mock provider answers canonical requests only")
        return call.request

    async def complete(self, call: Call) -> RawReply | c.Response:
        request = self._request(call)
        tool = _tool_call(request)
        words, stop = ([], "tool_use") if tool else _answer_words(call.model, request)
        if self.delay:
            await asyncio.sleep(self.delay * len(words))
        content: list[c.ContentBlock] = [tool] if tool else [c.TextBlock(text="".join(words))]
        return c.Response(
            id=_response_id(),
            model=call.model,
            content=content,
            stop_reason=stop,
            usage=c.Usage(
                input_tokens=estimate_tokens(_prompt_text(request)),
                output_tokens=1 if tool else len(words),
            ),
        )

    async def perform(self, operation: str, call: Call) -> RawReply:
        """Embeddings, rerank or moderation, answered in the OpenAI (Cohere/Jina) shape."""
        if call.model == "fail":
            raise ProviderHTTPError(503, "the mock model 'fail' always fails (to show fallback)")
        try:
            return RawReply(OPERATIONS[operation](call.model, call.raw or {}))
        except InvalidRequest as invalid:
            raise ProviderHTTPError(400, invalid.message) from invalid

    async def stream(self, call: Call) -> AsyncIterator[bytes | c.StreamEvent]:
        request = self._request(call)
        input_tokens = estimate_tokens(_prompt_text(request))
        yield c.MessageStart(
            id=_response_id(),
            model=call.model,
            usage=c.Usage(input_tokens=input_tokens),
        )
        tool = _tool_call(request)
        if tool is not None:
            yield c.BlockStart(index=0, block=c.ToolUseStart(id=tool.id, name=tool.name))
            yield c.BlockDelta(index=0, delta=c.ToolArgsDelta(partial_json="{}"))
            yield c.BlockStop(index=0)
            yield c.UsageUpdate(usage=c.Usage(input_tokens=input_tokens, output_tokens=1))
            yield c.Finish(stop_reason="tool_use")
            return
        words, stop = _answer_words(call.model, request)
        yield c.BlockStart(index=0, block=c.TextStart())
        for count, word in enumerate(words, 1):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield c.BlockDelta(index=0, delta=c.TextDelta(text=word))
            if count % 16 == 0:
                yield c.UsageUpdate(usage=c.Usage(input_tokens=input_tokens, output_tokens=count))
        yield c.BlockStop(index=0)
        yield c.UsageUpdate(usage=c.Usage(input_tokens=input_tokens, output_tokens=len(words)))
        yield c.Finish(stop_reason=stop)
