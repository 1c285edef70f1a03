"""Dispatch: ONE attempt loop over a plan's targets, for whole answers and streams alike.

``Dispatcher.run`` walks the targets (``routers.attempts.Attempts``: fallbacks, retries,
health) and hands each call to an ``Attempt``: ``start`` makes the call up to the point where
the answer is known good (a whole reply; a stream's first content, see streaming.py) and
raises ``ProviderError`` to move on; ``finish`` delivers it. Either way the loop returns an
``Outcome``; a failure is an ``Outcome`` with its error, never an exception.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

import structlog

from adapters.base import Adapter, Call
from adapters.errors import ProviderError, ProviderHTTPError
from gateway.errors import all_failed, describe, from_provider_error
from gateway.logs import FastInfo
from gateway.pipeline.operation import Operation
from gateway.pipeline.outcome import Admitted, Header, Outcome, failed
from gateway.usage_estimate import SentBodies
from routers.attempts import Attempts, RetryPolicy
from routers.catalog import Deployment
from routers.health import Health

Send = Callable[[dict[str, Any]], Awaitable[None]]
Started = TypeVar("Started")
Complete = Callable[[Admitted], Awaitable[Outcome]]
_log = FastInfo(structlog.get_logger("gateway.pipeline"))
_CHAIN_DEPTH = 8  # causes followed by drop_frames (a chain may, rarely, loop)


def upstream_failed(request_id: str, target: Deployment, error: ProviderError) -> None:
    """Log a failed call with the provider's own words, which callers do not see (see
    ``gateway.errors.CALLER_FAULTS``); a refusal of our credentials is logged without them,
    since providers echo part of the key in it."""
    status = error.status if isinstance(error, ProviderHTTPError) else None
    detail = describe(error) if status in (401, 403) else str(error)
    _log.warning("upstream_failed", request_id=request_id, target=target.id,
                 status=status, error=detail)


def drop_frames(error: BaseException) -> None:
    """Forget the tracebacks of a failed call's error and of its causes, once it is logged.

    The error is kept (``Attempts.failures``) while its traceback holds the attempt loop's
    frame, which holds the attempts: a reference cycle per failed call, left to the garbage
    collector. Nothing reads those frames (the log line has the error's words)."""
    seen: BaseException | None = error
    for _ in range(_CHAIN_DEPTH):
        if seen is None:
            return
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__


class Responder:
    """The sending half of one ASGI exchange; ``started`` once the headers are out."""

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def start(self, status: int, headers: list[Header]) -> None:
        self.started = True
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, chunk: bytes, more: bool = False) -> None:
        await self.send({"type": "http.response.body", "body": chunk, "more_body": more})


class Attempt(Protocol, Generic[Started]):
    """One way of delivering an answer (whole, or streamed)."""

    async def start(
        self, adapter: Adapter, call: Call, target: Deployment, level: int, attempts: Attempts
    ) -> Started: ...

    async def finish(self, started: Started, attempts: Attempts) -> Outcome: ...


class Dispatcher:
    """The attempt loop (see the module docstring)."""

    def __init__(
        self, adapters: dict[str, Adapter], health: Health, policy: RetryPolicy
    ) -> None:
        self.adapters = adapters
        self.health = health
        self.policy = policy

    async def run(
        self, operation: Operation, admitted: Admitted, attempt: Attempt[Started]
    ) -> Outcome:
        attempts = Attempts(admitted.plan, self.health, self.policy)
        upstream = operation.upstream(admitted.parsed, admitted.plan, admitted.upstream_headers)
        byok = admitted.byok
        # ``next_now`` first: a coroutine only when a round is over (retries wait).
        while (step := attempts.next_now() or await attempts.next()) is not None:
            target, level = step
            adapter = self.adapters[target.provider]
            call = upstream.call(adapter, target, byok)
            attempts.begin(target)
            try:
                try:
                    started = await attempt.start(adapter, call, target, level, attempts)
                except ProviderError as error:
                    upstream_failed(admitted.facts.request_id, target, error)
                    drop_frames(error)
                    if attempts.failed(target, error):
                        continue
                    return failed(from_provider_error(error, target.id), attempts.count)
                attempts.succeeded(target)
                return await attempt.finish(started, attempts)
            finally:
                attempts.end(target)
        return failed(all_failed(attempts), attempts.count)


class WholeAnswer:
    """A non-streamed answer: the reply, encoded for the caller, in an ``Outcome`` whose
    ``body`` the endpoint sends."""

    __slots__ = ("admitted", "operation")

    def __init__(self, operation: Operation, admitted: Admitted) -> None:
        self.operation = operation
        self.admitted = admitted

    async def start(
        self, adapter: Adapter, call: Call, target: Deployment, level: int, attempts: Attempts
    ) -> Outcome:
        reply = await self.operation.send(adapter, call)
        body, usage = self.operation.reply(reply, target)
        sent = None
        if usage is None:  # counted with the tokenizer at settle
            sent = SentBodies()
            sent.record(body)
        ttft = time.perf_counter() - self.admitted.facts.started
        return Outcome(served=target, fallback_level=level, attempts=attempts.count,
                       usage=usage, ttft=ttft, body=body, sent=sent)

    async def finish(self, started: Outcome, attempts: Attempts) -> Outcome:
        return started


def whole_answers(dispatcher: Dispatcher, operation: Operation) -> Complete:
    """The function that answers an admitted request whole (what the cache decorates)."""

    def complete(admitted: Admitted) -> Awaitable[Outcome]:
        # The dispatcher's coroutine itself, not one awaiting it: one frame less to resume.
        return dispatcher.run(operation, admitted, WholeAnswer(operation, admitted))

    return complete
