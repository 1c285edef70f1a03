"""The endpoint: a plain ASGI app per operation and dialect, with ONE error boundary.

It runs the stages in order (intake → dispatch → answer → settle) and is the only place that
catches what the stages did not expect: such a request is logged with its traceback and
answered 500 in the caller's dialect (or ended with an error frame if its stream had started),
and it is settled like every other.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.errors import GatewayError
from gateway.pipeline.dispatch import Complete, Dispatcher, Responder
from gateway.pipeline.intake import Head, Intake, Refused
from gateway.pipeline.operation import Operation
from gateway.pipeline.outcome import Admitted, Facts, Header, Outcome, failed
from gateway.pipeline.settle import Settler, error_headers, response_headers
from gateway.pipeline.streaming import StreamAnswer, StreamEnd, StreamGauge, stream_answer

Scope = dict[str, Any]
Receive = Any
Send = Any

_log = structlog.get_logger("gateway.pipeline")
_JSON: tuple[Header, ...] = ((b"content-type", b"application/json"),)
_DISCONNECTED = Outcome(status=499, error_type="client_disconnected")


def _length(body: bytes) -> Header:
    """A whole answer's length: the caller reads it as sized, not as chunks."""
    return (b"content-length", b"%d" % len(body))


@dataclass(frozen=True, slots=True, eq=False)
class Endpoint:
    """One operation in one dialect, as an ASGI app (see the module docstring).

    ``complete`` answers an admitted request whole (the dispatcher's, or the response cache
    decorating it); streams go through ``dispatcher`` directly, and ``stream_end`` (if any)
    sees each stream's translator before its last frames are sent."""

    operation: Operation
    intake: Intake
    dispatcher: Dispatcher
    complete: Complete
    settler: Settler
    streams: StreamGauge
    first_byte: float
    commit_timeout: float
    stream_end: StreamEnd | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        head = Head(scope["headers"])
        responder = Responder(send)
        facts: Facts = head.facts()
        outcome = _DISCONNECTED
        try:
            try:
                admitted = await self.intake.admit(head, receive)
            except Refused as refused:
                facts = refused.facts
                outcome = failed(refused.error) if refused.error else _DISCONNECTED
            else:
                facts = admitted.facts
                try:
                    outcome = await self._dispatch(admitted, receive, responder)
                except GatewayError as error:  # e.g. the shared cache down under fail-closed
                    outcome = failed(error)
            await self._answer(facts, outcome, responder)
        except Exception:
            _log.exception("request_failed", request_id=facts.request_id)
            outcome = Outcome(status=500, error_type="internal_error")
            if not responder.started:
                internal = GatewayError(
                    f"Internal error; quote request id {facts.request_id} to the operator"
                )
                await self._answer(facts, failed(internal), responder)
        finally:
            self.settler.settle(self.operation, facts, outcome)

    def _dispatch(
        self, admitted: Admitted, receive: Receive, responder: Responder
    ) -> Awaitable[Outcome]:
        """The awaitable that answers (returned, not awaited here: one frame less to resume
        at every step of a stream)."""
        if admitted.facts.stream:
            answer = StreamAnswer(
                self.operation, admitted, responder, self.first_byte, self.commit_timeout,
                self.stream_end,
            )
            return stream_answer(self.dispatcher, answer, receive, self.streams)
        return self.complete(admitted)

    async def _answer(self, facts: Facts, outcome: Outcome, responder: Responder) -> None:
        """Send what is left to send: a whole answer, an error, or nothing (a stream)."""
        error = outcome.error
        if error is not None:
            if responder.started:
                await responder.body(self.operation.error_frame(error))
                return
            for name, value in error_headers(facts, outcome).items():
                error.headers.setdefault(name, value)
            body = self.operation.error_body(error)
            headers = [*_JSON, (b"x-request-id", facts.request_id.encode()), _length(body)]
            headers.extend(
                (k.lower().encode(), v.encode("latin-1")) for k, v in error.headers.items()
            )
            await responder.start(error.status, headers)
            await responder.body(body)
        elif outcome.status == 200 and not facts.stream:
            headers = response_headers(
                facts, _JSON, outcome.served, outcome.fallback_level, outcome
            )
            headers.append(_length(outcome.body))
            await responder.start(200, headers)
            await responder.body(outcome.body)
