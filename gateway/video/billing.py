"""What a video job costs, and how its end is billed: once, by the instance that ended it.

The price is per second of video (``price_per_second`` times seconds) or per video
(``price_per_video``); a failed job costs nothing and gets its daily credits back. The
reservation admission made at creation is held by the process that created the job
(``Reservations``); the instance that ends the job settles it if it holds it, else spends the
cost from the balance directly (prepaid tiers), and the creator lets its reservation go at its
next look (``Reservations.release_ended``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from adapters import canonical as c
from gateway.admission import Admission, Ticket
from gateway.counters import Limiter
from gateway.errors import GatewayError
from routers.catalog import Deployment


def video_usage(seconds: float) -> c.Usage:
    """What one finished video made, for ``gateway.pipeline.settle.price`` (the one place
    cost is computed: ``price_per_video`` per video plus ``price_per_second`` per second)."""
    return c.Usage(videos=1, video_seconds=seconds)


def refunds_of(ticket: Ticket) -> str:
    """The credit counters a failed job gives back, as stored with it."""
    return ";".join(f"{c.key} {c.amount} {c.until}" for c in ticket.credit_counters)


class Reservations:
    """Tickets of the jobs this process created, settled when the job ends (see module)."""

    def __init__(self, admission: Admission, limiter: Limiter) -> None:
        self.admission = admission
        self.limiter = limiter
        self.held: dict[str, tuple[Ticket, Deployment]] = {}

    def hold(self, job_id: str, ticket: Ticket, served: Deployment) -> None:
        self.held[job_id] = (ticket, served)

    async def settle(self, job: Any, cost: float, completed: bool) -> None:
        """Bill the end of ``job``: its held ticket settled, or the cost spent and the credits
        given back without it."""
        held = self.held.pop(job.id, None)
        if held is not None:
            ticket, served = held
            self.admission.settle(ticket, served if completed else None, None, cost)
            return
        if completed and job.prepaid and cost:
            self.admission.cache.balances.spend(job.user_email, cost)
        if not completed:
            await self.refund(job.refunds)

    async def refund(self, refunds: str) -> None:
        """Give back the credit counters stored with a failed job."""
        for entry in filter(None, refunds.split(";")):
            key, amount, until = entry.rsplit(" ", 2)
            with contextlib.suppress(GatewayError):
                await self.limiter.add(key, -int(amount), float(until))

    def release_ended(self, statuses: dict[str, str]) -> None:
        """Let go of the tickets of jobs another instance ended (it billed them)."""
        for job_id, status in statuses.items():
            if status in ("completed", "failed") and job_id in self.held:
                # Served: the credits stay as the ending instance left them.
                ticket, served = self.held.pop(job_id)
                self.admission.settle(ticket, served, None, 0.0)
