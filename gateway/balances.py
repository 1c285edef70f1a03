"""Prepaid balances on the request path: reservations before a call, spending after it.

``BalanceBook`` is the interface admission uses; ``LocalBalances`` keeps it in this process.
Its ``reserve`` never awaits between the check and the reservation, so concurrent requests
of one user cannot overspend (100 parallel calls with balance for 10 serve at most 10). A
shared backend (Redis) implements the same ``reserve`` as one Lua script, and ``release`` and
``spend`` as queued, fire-and-forget updates.

``balance`` is the stored balance as last read from the database; spending waits in
``pending`` until the batched writer of ``gateway.accounts`` has written it.
"""

from __future__ import annotations

from typing import Protocol


class BalanceBook(Protocol):
    def available(self, email: str, balance: float) -> float: ...

    async def reserve(self, email: str, balance: float, amount: float) -> bool: ...

    def release(self, email: str, amount: float) -> None: ...

    def spend(self, email: str, amount: float) -> None: ...


class LocalBalances:
    """Reservations and unwritten spending of this process, per user (email)."""

    def __init__(self) -> None:
        self.reserved: dict[str, float] = {}
        self.pending: dict[str, float] = {}

    def available(self, email: str, balance: float) -> float:
        return balance - self.pending.get(email, 0.0) - self.reserved.get(email, 0.0)

    async def reserve(self, email: str, balance: float, amount: float) -> bool:
        # No await in here: the check and the reservation are one step for the event loop.
        available = self.available(email, balance)
        if available <= 0 or available < amount:
            return False
        self.reserved[email] = self.reserved.get(email, 0.0) + amount
        return True

    def release(self, email: str, amount: float) -> None:
        _subtract(self.reserved, email, amount)

    def spend(self, email: str, amount: float) -> None:
        if amount > 0:
            self.pending[email] = self.pending.get(email, 0.0) + amount

    def take_pending(self) -> dict[str, float]:
        return dict(self.pending)

    def written(self, debits: dict[str, float]) -> None:
        for email, amount in debits.items():
            _subtract(self.pending, email, amount)


def _subtract(table: dict[str, float], email: str, amount: float) -> None:
    left = table.get(email, 0.0) - amount
    if left <= 1e-12:
        table.pop(email, None)
    else:
        table[email] = left
