"""What the Responses endpoint does with stored responses (``ResponseMemory``).

- ``expand`` (intake, before planning): a body naming ``previous_response_id`` becomes the body
  the caller would have sent with the whole conversation: the stored response's input items,
  then its output items, then the new input. The previous ``instructions`` are not carried
  over (OpenAI's rule: each request brings its own). The body keeps ``previous_response_id``,
  which the answer repeats; it never goes upstream. An id the caller's account does not own
  (unknown, another account's, deleted, past the retention) is a 404 that says which.
- ``whole`` and ``stream_end`` (dispatch): an answer whose request did not say ``store: false``
  is kept, with the input items that led to it, before the caller gets its end (see
  ``gateway.responses.keeper`` for why, and what that wait costs).

Items are moved as raw JSON (``msgspec.Raw``): nothing of a conversation is decoded and encoded
again but the body's top level.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from adapters.base import StreamTranslator
from adapters.client import Parsed
from adapters.responses.stream import ResponsesPassthrough, ResponsesStreamEncoder
from gateway.accounts.keys import Principal
from gateway.errors import NotFound, ServiceUnavailable
from gateway.pipeline.dispatch import Complete
from gateway.pipeline.outcome import Admitted, Outcome
from gateway.responses.keeper import ResponseKeeper, owner_of
from gateway.storage import StorageUnavailable
from gateway.storage.records import StoredResponse


class _Head(msgspec.Struct):
    """What a stored row says of its response object (the rest is read only by callers)."""

    id: str = ""
    status: str = ""
    model: str = ""


class _Output(msgspec.Struct):
    output: list[msgspec.Raw] = []


class _Input(msgspec.Struct):
    input: msgspec.Raw = msgspec.Raw(b'""')


_head = msgspec.json.Decoder(_Head)
_output = msgspec.json.Decoder(_Output)
_input = msgspec.json.Decoder(_Input)
_items = msgspec.json.Decoder(list[msgspec.Raw])
_USER_MESSAGE = (b'{"type":"message","role":"user","content":', b"}")


def input_items(body: bytes) -> list[msgspec.Raw]:
    """A Responses body's ``input`` as items: a string is one user message."""
    raw = bytes(_input.decode(body).input)
    if raw.startswith(b'"'):
        return [msgspec.Raw(_USER_MESSAGE[0] + raw + _USER_MESSAGE[1])] if raw != b'""' else []
    return _items.decode(raw)


def conversation(row: StoredResponse) -> list[msgspec.Raw]:
    """A stored response's whole conversation: its input items, then its output items."""
    return [*_items.decode(row.input_items), *_output.decode(row.response).output]


def not_found(response_id: str, param: str | None = None) -> NotFound:
    """The 404 of an id this caller's account has no response under."""
    error = NotFound(
        f"Response with id '{response_id}' not found: it was never stored for your account "
        "(store: false, or another account's), was deleted, or is past the retention period",
        param=param,
    )
    error.openai_type = "invalid_request_error"
    error.code = "previous_response_not_found" if param else "not_found"
    return error


def wants_store(admitted: Admitted) -> bool:
    """Whether this request's answer is kept: ``store`` not false, and a caller to keep it for."""
    typed = admitted.parsed.typed
    return admitted.facts.principal is not None and getattr(typed, "store", None) is not False


class ResponseMemory:
    """``expand``, ``whole`` and ``stream_end`` over one ``ResponseKeeper`` (module docstring);
    ``parse`` is the operation's (a body becomes its ``Parsed`` request)."""

    def __init__(self, keeper: ResponseKeeper, parse: Callable[[bytes], Parsed]) -> None:
        self.keeper = keeper
        self.parse = parse

    async def expand(
        self, parsed: Parsed, principal: Principal, body: bytes
    ) -> tuple[Parsed, bytes]:
        """The request with its stored conversation before its input, and that body."""
        previous = parsed.typed.previous_response_id
        if previous is None:
            return parsed, body
        try:
            row = await self.keeper.find(owner_of(principal), previous)
        except StorageUnavailable as exc:
            raise ServiceUnavailable(
                "The response store is unavailable: retry in a few seconds, or send the whole "
                "conversation in 'input' without 'previous_response_id'"
            ) from exc
        if row is None:
            raise not_found(previous, "previous_response_id")
        whole = dict(parsed.raw())
        whole["input"] = [*conversation(row), *input_items(body)]
        expanded = msgspec.json.encode(whole)
        return self.parse(expanded), expanded

    def whole(self, complete: Complete) -> Complete:
        """``complete`` with each whole answer kept before it is sent."""

        async def complete_and_keep(admitted: Admitted) -> Outcome:
            outcome = await complete(admitted)
            if outcome.status == 200 and outcome.body and wants_store(admitted):
                await self._keep(admitted, outcome.body)
            return outcome

        return complete_and_keep

    async def stream_end(self, admitted: Admitted, translator: StreamTranslator) -> None:
        """Keep a stream's final response (completed, incomplete or failed) before its last
        event is sent."""
        if not isinstance(translator, ResponsesStreamEncoder | ResponsesPassthrough):
            return
        if translator.final is not None and wants_store(admitted):
            await self._keep(admitted, translator.final)

    async def _keep(self, admitted: Admitted, final: bytes) -> None:
        principal = admitted.facts.principal
        assert principal is not None
        try:
            head = _head.decode(final)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return  # not a response object (a malformed upstream body): nothing to keep
        if not head.id:
            return
        items = msgspec.json.encode(input_items(admitted.facts.body))
        await self.keeper.keep(StoredResponse(
            owner=owner_of(principal), id=head.id, created_at=time.time(),
            key_id=principal.key_id, model=head.model, status=head.status,
            response=final.decode(), input_items=items.decode(),
        ))
