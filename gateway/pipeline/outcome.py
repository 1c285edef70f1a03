"""The values handed from stage to stage: ``Facts`` (what intake learnt), ``Admitted`` (a
request cleared to go upstream) and ``Outcome`` (how dispatch ended).

All three are frozen: a stage that learns more makes a new value, so no stage can change
what an earlier one decided behind its back.
"""

from __future__ import annotations

from typing import Any

import msgspec

from adapters import canonical as c
from gateway.accounts.keys import Principal
from gateway.admission import Ticket
from gateway.errors import GatewayError
from gateway.usage_estimate import SentBodies
from routers.catalog import Deployment
from routers.plan import Plan

Header = tuple[bytes, bytes]


class Facts(msgspec.Struct, frozen=True):
    """What is known of a request however far it got: enough to settle it.

    ``headers`` are the account headers admission answers with (rate limits, tier, credits,
    key source, persona); empty for a request refused before admission."""

    request_id: str
    started: float  # time.perf_counter() at arrival
    created_at: float  # time.time() at arrival
    principal: Principal | None = None
    model: str = ""
    stream: bool = False
    router: str | None = None
    body: bytes = b""
    ticket: Ticket | None = None
    headers: tuple[Header, ...] = ()


class Admitted(msgspec.Struct, frozen=True):
    """A request past intake: parsed, planned and admitted, ready for dispatch.

    ``parsed`` is the operation's own parse (``gateway.ingress.Parsed`` for chat);
    ``upstream_headers`` are the caller's headers that go upstream (``anthropic-beta``);
    ``byok`` are the caller's own provider keys (provider -> key)."""

    facts: Facts
    parsed: Any
    plan: Plan
    ticket: Ticket
    upstream_headers: dict[str, str]
    cache_directive: bytes | None = None

    @property
    def byok(self) -> dict[str, str]:
        return self.ticket.byok


class Outcome(msgspec.Struct, frozen=True):
    """How one dispatch ended.

    ``body`` is a whole answer still to be sent (empty for streams, which are sent as they
    come, and for failures). ``error`` is set when the request failed and the client has not
    been told yet (a stream already started gets it as a frame). ``sent`` keeps the
    answer frames while no usage is known, to count them with the tokenizer at settle."""

    served: Deployment | None = None
    fallback_level: int = 0
    attempts: int = 0
    status: int = 200
    error: GatewayError | None = None
    error_type: str = ""
    usage: c.Usage | None = None
    ttft: float | None = None
    body: bytes = b""
    sent: SentBodies | None = None
    cache_hit: bool = False
    headers: tuple[Header, ...] = ()


def failed(error: GatewayError, attempts: int = 0) -> Outcome:
    """The outcome of a request refused or failed with ``error`` (not yet answered)."""
    return Outcome(attempts=attempts, status=error.status, error=error,
                   error_type=error.openai_type)
