"""Streamed answers: the commit point, keep-alive, relay, and the client going away.

Streams follow the commit point of DESIGN.md: frames are held until the first piece of
content, and any failure before it moves on to the next target (``StreamAnswer.start`` raises
``ProviderError`` to the attempt loop); response headers go out at commit and so name the
model that really served. A stream that has not committed after ``commit_timeout`` sends its
headers and ``: keep-alive`` comments while it keeps waiting (fallback still allowed). After
commit an upstream failure ends the stream with an error frame in the caller's dialect. A
client that disconnects cancels the upstream request at once; partial usage is recorded.
An operation that keeps its answers (the Responses API) is given the translator by
``stream_end`` before the stream's last frames go out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from adapters import canonical as c
from adapters.base import Adapter, Call, FailingTranslator, StreamTranslator
from adapters.errors import ProviderError, ProviderTimeout
from gateway.errors import from_provider_error
from gateway.pipeline.dispatch import Dispatcher, Responder, drop_frames, upstream_failed
from gateway.pipeline.operation import Operation
from gateway.pipeline.outcome import Admitted, Header, Outcome
from gateway.pipeline.settle import response_headers
from gateway.usage_estimate import SentBodies
from routers.attempts import Attempts
from routers.catalog import Deployment

Receive = Any
Items = AsyncIterator[bytes | c.StreamEvent]
StreamEnd = Callable[[Admitted, StreamTranslator], Awaitable[None]]
_KEEPALIVE = b": keep-alive\n\n"
SSE_HEADERS: tuple[Header, ...] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class KeepAlive:
    """The response headers and ``: keep-alive`` comments of a stream that has not committed
    after ``commit_timeout``: a task started by a timer, only for such streams."""

    __slots__ = ("headers", "interval", "responder", "sending", "stopped", "task")

    def __init__(
        self, responder: Responder, headers: Callable[[], list[Header]], commit_timeout: float
    ) -> None:
        self.responder = responder
        self.headers = headers
        self.interval = min(commit_timeout, 5.0)
        self.task: asyncio.Task[None] | None = None
        self.sending = False
        self.stopped = False

    def start(self) -> None:
        if not self.stopped:
            self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        responder = self.responder
        while not self.stopped:
            self.sending = True
            if not responder.started:
                await responder.start(200, self.headers())
            await responder.body(_KEEPALIVE, more=True)
            self.sending = False
            if self.interval <= 0:  # commit_timeout 0: headers at once, then wait quietly
                return
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        """Stop the comments; a send under way finishes first (sends must not interleave)."""
        self.stopped = True
        task = self.task
        if task is None:
            return
        if not self.sending:
            task.cancel()
        await asyncio.wait((task,))
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


class Committed:
    """A stream past its commit point: what is left to relay."""

    __slots__ = ("held", "items", "translator")

    def __init__(self, items: Items, translator: StreamTranslator, held: list[bytes]) -> None:
        self.items = items
        self.translator = translator
        self.held = held


@dataclass(slots=True, eq=False)
class StreamAnswer:
    """A streamed answer through the attempt loop; it also keeps what a disconnect needs to
    settle (the target being served, its translator, the frames sent)."""

    operation: Operation
    admitted: Admitted
    responder: Responder
    first_byte: float
    commit_timeout: float
    stream_end: StreamEnd | None = None
    served: Deployment | None = field(default=None, init=False)
    level: int = field(default=0, init=False)
    attempts: Attempts | None = field(default=None, init=False)
    translator: StreamTranslator | None = field(default=None, init=False)
    ttft: float | None = field(default=None, init=False)
    sent: SentBodies | None = field(default=None, init=False)

    def _headers(self) -> list[Header]:
        return response_headers(self.admitted.facts, SSE_HEADERS, self.served, self.level)

    async def start(
        self, adapter: Adapter, call: Call, target: Deployment, level: int, attempts: Attempts
    ) -> Committed:
        self.served, self.level, self.attempts = target, level, attempts
        translator = self.operation.translator(
            adapter, self.admitted.parsed, target, self.admitted.facts.request_id
        )
        self.translator = translator
        items = adapter.stream(call)
        try:
            held = await self._until_commit(items, translator)
        except ProviderError:
            await items.aclose()  # type: ignore[attr-defined]
            self.served = None
            raise
        return Committed(items, translator, held)

    async def _until_commit(self, items: Items, translator: StreamTranslator) -> list[bytes]:
        """Read until the first content (or the end); returns the frames held so far.

        The items are awaited directly (no task per item): a timer starts the keep-alive task
        once ``commit_timeout`` has passed with nothing to commit, and ``timeout_at`` ends the
        wait at the first-token deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.first_byte
        elapsed = time.perf_counter() - self.admitted.facts.started
        keepalive_at = loop.time() + max(self.commit_timeout - elapsed, 0)
        keepalive = KeepAlive(self.responder, self._headers, self.commit_timeout)
        timer = loop.call_at(keepalive_at, keepalive.start) if keepalive_at < deadline else None
        held: list[bytes] = []
        limit = asyncio.timeout_at(deadline)
        try:
            async with limit:
                while True:
                    try:
                        item = await anext(items)
                    except StopAsyncIteration:
                        return held
                    frame = translator.feed(item)
                    if frame:
                        held.append(frame)
                    if translator.committed:
                        return held
        except TimeoutError:
            if limit.expired():
                raise ProviderTimeout("first_token") from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
            await keepalive.stop()

    async def finish(self, committed: Committed, attempts: Attempts) -> Outcome:
        """Send the headers (unless the keep-alive did), the held frames, then everything else
        the upstream streams, then the close.

        While the upstream has reported no usage the frames sent are kept (``sent``) to count
        the answer with the tokenizer if it never does. Each chunk goes to the server's
        ``send`` from this frame: no coroutine of ours in between (see bench/README.md)."""
        responder = self.responder
        self.ttft = time.perf_counter() - self.admitted.facts.started
        if not responder.started:
            await responder.start(200, self._headers())
        items, translator, send = committed.items, committed.translator, responder.send
        sent = self.sent = SentBodies()
        if committed.held:
            frame = b"".join(committed.held)
            if translator.usage is None:
                sent.record(frame)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        try:
            async for item in items:
                frame = translator.feed(item)
                if frame:
                    if translator.usage is None:
                        sent.record(frame)
                    elif sent.size:
                        sent.clear()
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
        except ProviderError as failure:
            return await self._broken(failure, attempts, translator)
        finally:
            await items.aclose()  # type: ignore[attr-defined]
        closing = translator.close()
        if self.stream_end is not None:
            await self.stream_end(self.admitted, translator)
        await send({"type": "http.response.body", "body": closing, "more_body": False})
        return self.outcome()

    async def _broken(
        self, failure: ProviderError, attempts: Attempts, translator: StreamTranslator
    ) -> Outcome:
        """A committed stream broke: no fallback; the caller gets an error frame."""
        served = self.served
        if served is not None:
            upstream_failed(self.admitted.facts.request_id, served, failure)
            drop_frames(failure)
            attempts.broke(served, failure)
        error = from_provider_error(failure, served.id if served else "")
        if isinstance(translator, FailingTranslator):
            frame = translator.fail(error)
            if self.stream_end is not None:
                await self.stream_end(self.admitted, translator)
        else:
            frame = self.operation.error_frame(error)
        await self.responder.body(frame)
        status = 502 if error.status < 500 else error.status
        return self.outcome(status, error.openai_type)

    def outcome(self, status: int = 200, error_type: str = "") -> Outcome:
        """What this stream came to, so far (also after a disconnect)."""
        translator = self.translator
        return Outcome(
            served=self.served,
            fallback_level=self.level,
            attempts=self.attempts.count if self.attempts is not None else 0,
            status=status,
            error_type=error_type,
            usage=translator.usage if translator is not None else None,
            ttft=self.ttft,
            sent=self.sent,
        )


class StreamGauge:
    """How many streams this process is relaying (``gateway_open_streams``)."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = 0


async def stream_answer(
    dispatcher: Dispatcher, answer: StreamAnswer, receive: Receive, gauge: StreamGauge
) -> Outcome:
    """Dispatch a stream, cancelling it at once if the client disconnects or the server shuts
    down (status 499)."""
    task = asyncio.current_task()
    assert task is not None
    state = {"disconnected": False, "finished": False, "shutdown": False}

    async def watch_disconnect() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not state["finished"]:
                    state["disconnected"] = True
                    state["shutdown"] = message.get("reason") == "shutdown"
                    task.cancel()
                return

    watcher = asyncio.create_task(watch_disconnect())
    gauge.open += 1
    try:
        return await dispatcher.run(answer.operation, answer.admitted, answer)
    except asyncio.CancelledError:
        if not state["disconnected"]:
            raise
        task.uncancel()
        # The server's shutdown cut it (gateway.lifecycle), or the client went away.
        return answer.outcome(499, "shutdown" if state["shutdown"] else "client_disconnected")
    finally:
        state["finished"] = True
        watcher.cancel()
        gauge.open -= 1
