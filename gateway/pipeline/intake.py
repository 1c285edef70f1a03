"""Intake: from the ASGI request to an ``Admitted`` request, or a refusal.

Header scan, key, body (its JSON nesting bounded before any decoder sees it), the operation's
parse, the routers' plan and admission (limits and
credits), in that order: a bad key is refused before the body is read, and nothing is
reserved for a request that cannot be planned. Nothing here waits on the database (keys and
account state are cached), but for a request that names stored state (``expand``: a Responses
``previous_response_id``), which is read by its key, once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from adapters.features import RequestFeatures
from gateway.accounts.keys import Principal, key_from_headers
from gateway.admission import Admission, Ticket
from gateway.errors import BodyTooLarge, GatewayError, ModelNotFound, from_routing_refusal
from gateway.ingress import new_request_id
from gateway.json_depth import check_depth
from gateway.pipeline.operation import Operation
from gateway.pipeline.outcome import Admitted, Facts, Header
from gateway.unpriced import drop_unpriced
from routers.plan import Plan, Planner
from routers.refusals import RoutingRefused

Receive = Any
# Stored state a parsed request refers to, read before it is planned: (parsed, body) -> the
# request and body as if the caller had sent that state itself (the Responses API's
# previous_response_id).
Expand = Callable[[Any, Principal, bytes], Awaitable[tuple[Any, bytes]]]


class ClientDisconnected(Exception):
    """The client went away before the request was read."""


class Refused(Exception):
    """Intake ended early: ``error`` is the answer (None when the client went away), ``facts``
    what was known by then."""

    def __init__(self, error: GatewayError | None, facts: Facts) -> None:
        super().__init__(error)
        self.error = error
        self.facts = facts


class Head:
    """What intake reads from the request's headers, in one pass."""

    __slots__ = ("api_key", "authorization", "cache_directive", "created_at", "declared",
                 "request_id", "started", "upstream")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = time.perf_counter()
        self.created_at = time.time()
        self.authorization: bytes | None = None
        self.api_key: bytes | None = None
        request_id: str | None = None
        self.cache_directive: bytes | None = None
        self.declared: int | None = None
        self.upstream: dict[str, str] = {}
        for name, value in headers:
            if name == b"authorization":
                self.authorization = value
            elif name == b"x-api-key":
                self.api_key = value
            elif name == b"x-request-id":
                request_id = _safe_request_id(value)
            elif name == b"content-length":
                self.declared = int(value) if value.isdigit() else None
            elif name == b"anthropic-beta":
                self.upstream["anthropic-beta"] = value.decode("latin-1")
            elif name == b"x-cache":
                self.cache_directive = value
        self.request_id = request_id or new_request_id()

    def facts(self) -> Facts:
        """What is known of the request from its headers alone."""
        return Facts(self.request_id, self.started, self.created_at)


def _safe_request_id(value: bytes) -> str | None:
    text = value.decode("latin-1")[:128]
    return text if text.isprintable() and text.isascii() and text.strip() else None


async def read_body(receive: Receive, limit: int, declared: int | None) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes (declared or sent)."""
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"Request body is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def account_headers(ticket: Ticket, plan: Plan) -> tuple[Header, ...]:
    """Rate, tier, credit and key-source headers of an admitted request (and its persona)."""
    source = b"byok" if plan.targets[0].provider in ticket.byok else b"pool"
    headers = [
        *ticket.headers,
        (b"x-tier", ticket.tier_name.encode()),
        (b"x-credits-remaining", ticket.credits_remaining.encode()),
        (b"x-key-source", source),
    ]
    if plan.persona:
        headers.append((b"x-persona", plan.persona.encode()))
    return tuple(headers)


@dataclass(frozen=True, slots=True, eq=False)
class Intake:
    """Turns requests for one operation into ``Admitted`` values (see the module docstring).

    ``keys`` resolves a key to its principal (``gateway.accounts.keys.KeyCache.resolve``);
    ``expand`` (if any) completes a parsed request from stored state before it is planned."""

    operation: Operation
    keys: Any
    planner: Planner
    admission: Admission
    max_body: int
    expand: Expand | None = None

    async def admit(self, head: Head, receive: Receive) -> Admitted:
        """The admitted request; raises ``Refused`` with what was known if it is not."""
        request_id, started, created_at = head.request_id, head.started, head.created_at
        principal: Principal | None = None
        parsed: Any = None
        plan: Plan | None = None
        body = b""
        operation = self.operation
        try:
            # resolve, not authenticate: admission refuses blocked accounts itself.
            principal = await self.keys.resolve(
                key_from_headers(head.authorization, head.api_key)
            )
            body = await read_body(receive, self.max_body, head.declared)
            check_depth(body)
            parsed = operation.parse(body)
            if self.expand is not None:
                parsed, body = await self.expand(parsed, principal, body)
            plan = self._plan(parsed)
            ticket = await self.admission.admit(
                principal, plan.targets[0], len(body), operation.output_cap(parsed, plan.overlay),
                operation.output_units(parsed),
            )
            drop_unpriced(plan, ticket.byok)
        except (GatewayError, ClientDisconnected) as exc:
            facts = Facts(
                request_id, started, created_at, principal,
                operation.model(parsed) if parsed is not None else "",
                operation.streamed(parsed) if parsed is not None else False,
                plan.router if plan is not None else None,
                body,
            )
            raise Refused(exc if isinstance(exc, GatewayError) else None, facts) from exc
        facts = Facts(
            request_id, started, created_at, principal, operation.model(parsed),
            operation.streamed(parsed), plan.router, body, ticket, account_headers(ticket, plan),
        )
        return Admitted(facts, parsed, plan, ticket, head.upstream, head.cache_directive)

    def _plan(self, parsed: Any) -> Plan:
        """The routers' plan for this request (see routers/plan.py)."""
        operation = self.operation
        return plan_or_refuse(self.planner, operation.model(parsed), operation.features(parsed),
                              operation.chain(parsed), operation.mode)


def plan_or_refuse(
    planner: Planner,
    model: str,
    features: Callable[[], RequestFeatures],
    chain: list[str] | None = None,
    mode: str = "chat",
) -> Plan:
    """The routers' plan for ``model``; a routing refusal or an unknown model (404) raised as
    the gateway's error."""
    try:
        plan = planner.plan(model, features, chain, mode)
    except RoutingRefused as refusal:
        raise from_routing_refusal(refusal) from refusal
    if plan is None:
        raise ModelNotFound(
            f"Unknown model '{model}': GET /v1/models lists the models you can use",
            param="model",
        )
    return plan
