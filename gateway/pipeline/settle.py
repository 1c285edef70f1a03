"""Settle: an ``Outcome`` becomes one ``Settlement``, priced once by ``price``; the ledger row,
the metrics, the log line, admission's release and the ``X-Cost-USD`` header all read it.

A request whose upstream reported no usage (a cut stream, a disconnect) is counted with the
tokenizer; while the tokenizer is still loading (in a thread, see gateway/usage_estimate.py)
its settlement waits in a task held by the ledger, so shutdown still records it.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from adapters import canonical as c
from gateway.admission import Admission
from gateway.ledger import Ledger, UsageRow
from gateway.metrics import Metrics
from gateway.pipeline.operation import Operation
from gateway.pipeline.outcome import Facts, Header, Outcome
from gateway.usage_estimate import load_tokenizer, tokenizer_loaded
from routers.catalog import Deployment

_ZERO_COST = (b"x-cost-usd", b"0.00000000")
_ESTIMATED = (b"x-cost-estimated", b"true")


def price(model: Deployment | None, usage: c.Usage | None, cache_hit: bool = False) -> float:
    """USD for one request of any mode: the one place cost is computed.

    A cache hit pays for its prompt (all of it counted as cached reads) and not for the
    completion, which nothing generated. Images and video are priced per unit made
    (``routers.catalog.Model.cost``)."""
    if model is None or usage is None:
        return 0.0
    output = 0 if cache_hit else usage.output_tokens
    return model.cost(usage.input_tokens, output, usage.cache_read_tokens,
                      usage.images, usage.videos, usage.video_seconds)


class Settlement(msgspec.Struct, frozen=True):
    """One finished request, as billed, counted and logged."""

    request_id: str
    created_at: float
    key_id: str
    user: str
    dialect: str
    operation: str
    model_requested: str
    served: Deployment | None
    router: str
    stream: bool
    usage: c.Usage
    cost_usd: float
    latency_ms: float
    ttft_ms: float | None
    status: int
    error_type: str
    attempts: int
    fallback_level: int
    estimated: bool
    cache_hit: bool

    def row(self) -> UsageRow:
        """The ledger row."""
        served, usage = self.served, self.usage
        return UsageRow(
            request_id=self.request_id,
            created_at=self.created_at,
            key_id=self.key_id,
            user=self.user,
            dialect=self.dialect,
            operation=self.operation,
            model_requested=self.model_requested,
            model_served=served.id if served else "",
            provider=served.provider if served else "",
            router=self.router,
            stream=self.stream,
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            cached_tokens=usage.cache_read_tokens,
            cache_creation_tokens=usage.cache_creation_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_usd=self.cost_usd,
            latency_ms=self.latency_ms,
            ttft_ms=self.ttft_ms,
            status=self.status,
            error_type=self.error_type,
            attempts=self.attempts,
            fallback_level=self.fallback_level,
            estimated=self.estimated,
            cache_hit=self.cache_hit,
            images=usage.images,
            videos=usage.videos,
            video_seconds=usage.video_seconds,
        )

    def record_metrics(self, metrics: Metrics) -> None:
        served, usage = self.served, self.usage
        metrics.record(
            model=served.id if served else "",
            operation=self.operation,
            status=self.status,
            stream=self.stream,
            latency=self.latency_ms / 1000,
            ttft=self.ttft_ms / 1000 if self.ttft_ms is not None else None,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cache_read_tokens,
            cost=self.cost_usd,
            failed_attempts=max(self.attempts - (self.status == 200), 0),
            fallback=self.fallback_level > 0 and served is not None,
            requested=self.model_requested if self.attempts else "",
        )

    def log_line(self, log: Any) -> None:
        served, usage = self.served, self.usage
        log.info(
            "request",
            request_id=self.request_id,
            operation=self.operation,
            status=self.status,
            error_type=self.error_type or None,
            key_id=self.key_id or None,
            model=self.model_requested or None,
            served=served.id if served else None,
            router=self.router or None,
            stream=self.stream,
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            cached_tokens=usage.cache_read_tokens,
            cost_usd=round(self.cost_usd, 8),
            latency_ms=round(self.latency_ms, 2),
            ttft_ms=round(self.ttft_ms, 2) if self.ttft_ms is not None else None,
            attempts=self.attempts,
        )


def settlement_of(
    operation: Operation, facts: Facts, outcome: Outcome, estimated: bool
) -> Settlement:
    """The settlement of ``outcome``; its usage has been estimated already when ``estimated``."""
    usage = outcome.usage or c.Usage()
    principal = facts.principal
    return Settlement(
        request_id=facts.request_id,
        created_at=facts.created_at,
        key_id=principal.key_id if principal else "",
        user=principal.user if principal else "",
        dialect=operation.dialect,
        operation=operation.name,
        model_requested=facts.model,
        served=outcome.served,
        router=facts.router or "",
        stream=facts.stream,
        usage=usage,
        cost_usd=price(outcome.served, usage, outcome.cache_hit),
        latency_ms=(time.perf_counter() - facts.started) * 1000,
        ttft_ms=outcome.ttft * 1000 if outcome.ttft is not None else None,
        status=outcome.status,
        error_type=outcome.error_type,
        attempts=outcome.attempts,
        fallback_level=outcome.fallback_level,
        estimated=estimated,
        cache_hit=outcome.cache_hit,
    )


def needs_estimate(outcome: Outcome) -> bool:
    """Whether the upstream served something but reported no usage for it."""
    return (
        outcome.served is not None
        and outcome.usage is None
        and (outcome.status in (200, 499) or outcome.ttft is not None)
    )


class Settler:
    """Records settlements: admission's release, the ledger row, metrics and the log line."""

    def __init__(
        self, ledger: Ledger, admission: Admission, metrics: Metrics, log: Any
    ) -> None:
        self.ledger = ledger
        self.admission = admission
        self.metrics = metrics
        self.log = log

    def settle(self, operation: Operation, facts: Facts, outcome: Outcome) -> None:
        estimated = needs_estimate(outcome)
        if estimated:
            if not tokenizer_loaded():
                self.ledger.defer(self._settle_later(operation, facts, outcome))
                return
            usage = operation.estimate(facts.body, outcome.sent)
            outcome = msgspec.structs.replace(outcome, usage=usage, sent=None)
        settlement = settlement_of(operation, facts, outcome, estimated)
        if facts.ticket is not None:
            self.admission.settle(
                facts.ticket, settlement.served, outcome.usage, settlement.cost_usd
            )
        if facts.principal is not None:
            self.ledger.record(settlement.row())
        settlement.record_metrics(self.metrics)
        settlement.log_line(self.log)

    async def _settle_later(self, operation: Operation, facts: Facts, outcome: Outcome) -> None:
        await load_tokenizer()
        self.settle(operation, facts, outcome)


def response_headers(
    facts: Facts,
    base: tuple[Header, ...],
    served: Deployment | None,
    level: int,
    outcome: Outcome | None = None,
) -> list[Header]:
    """The headers of an answer: the request id, which model served at which fallback level,
    the router, the account headers, and ``X-Cost-USD``.

    ``outcome`` is the finished whole answer (its cost is exact, by ``price``); without it (a
    stream's headers go out at the commit point, before any usage) the cost is the upper bound
    reserved at admission and ``X-Cost-Estimated: true`` says so. The exact cost is in
    ``GET /v1/usage/requests/{request_id}`` once the stream ends."""
    headers = [*base, (b"x-request-id", facts.request_id.encode())]
    if served is not None:
        name = served.id.encode()
        headers.append((b"x-resolved-model", name))
        headers.append((b"x-fallback-level", str(level).encode()))
        if level:
            headers.append((b"x-fallback-model", name))
    if facts.router:
        headers.append((b"x-router", facts.router.encode()))
    if facts.ticket is None:
        return headers
    headers.extend(facts.headers)
    if outcome is not None:
        headers.extend(outcome.headers)
    if outcome is not None and outcome.usage is not None:
        cost = price(outcome.served, outcome.usage, outcome.cache_hit)
        headers.append((b"x-cost-usd", f"{cost:.8f}".encode()))
    else:
        headers.append((b"x-cost-usd", f"{facts.ticket.estimate_usd:.8f}".encode()))
        headers.append(_ESTIMATED)
    return headers


def error_headers(facts: Facts, outcome: Outcome) -> dict[str, str]:
    """The account headers an error answer carries (its cost is zero)."""
    if facts.ticket is None:
        return {}
    headers = {
        name.decode(): value.decode("latin-1") for name, value in (*facts.headers, *outcome.headers)
    }
    headers[_ZERO_COST[0].decode()] = _ZERO_COST[1].decode()
    return headers
