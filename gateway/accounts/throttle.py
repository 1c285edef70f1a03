"""Attempt throttles for logins, signups and password-reset requests.

An attempt is counted BEFORE the work it guards (an Argon2 verification, an account, a mail),
in the gateway's limits storage (memory, or Redis shared by every worker and instance), so
parallel attempts cannot slip past a check that is made before and counted after: with
``max_attempts`` = 5, at most 5 verifications run per window, however many arrive together.
A login that succeeds gives its attempt back, so only failures (and attempts still being
checked) use up the window. Windows are fixed, ``window`` seconds long.
"""

from __future__ import annotations

import time
from typing import Protocol

from gateway.errors import RateLimited

Slot = tuple[str, float]


class Counters(Protocol):
    """Counters that expire (``gateway.counters.Limiter``): memory, or Redis when shared."""

    async def add(self, key: str, amount: int, until: float) -> int: ...


class AttemptWindow:
    """At most ``max_attempts`` attempts per scope and window."""

    def __init__(
        self, limiter: Counters, name: str, max_attempts: int, window: float, message: str
    ) -> None:
        self.limiter = limiter
        self.name = name
        self.max_attempts = max_attempts
        self.window = max(window, 1.0)
        self.message = message  # may hold "{wait}": the seconds until the window ends

    def _slot(self, scope: str) -> Slot:
        start = int(time.time() // self.window)
        return f"throttle:{self.name}:{start}:{scope}", (start + 1) * self.window

    async def take(self, *scopes: str) -> list[Slot]:
        """Count one attempt in each scope; 429 (and nothing counted) if any is used up.
        Answers the slots counted, for ``give_back``."""
        taken: list[Slot] = []
        if self.max_attempts <= 0:
            return taken
        for scope in scopes:
            key, until = self._slot(scope)
            count = await self.limiter.add(key, 1, until)
            taken.append((key, until))
            if count > self.max_attempts:
                await self.give_back(taken)
                wait = int(until - time.time()) + 1
                raise RateLimited(
                    self.message.format(wait=wait),
                    code=f"{self.name}_throttled",
                    headers={"Retry-After": str(wait)},
                )
        return taken

    async def give_back(self, slots: list[Slot]) -> None:
        """Undo ``take`` (the attempt succeeded, or was refused)."""
        for key, until in slots:
            await self.limiter.add(key, -1, until)
