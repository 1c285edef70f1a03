"""Prepaid balances on the request path: reservations before a call, spending after it.

``BalanceBook`` is the interface admission uses; ``LocalBalances`` keeps it in this process.
Its ``reserve`` never awaits between the check and the reservation, so concurrent requests
of one user cannot overspend (100 parallel calls with balance for 10 serve at most 10).
``RedisBalances`` (Redis, ``limits.storage = "redis://…"``) implements the same ``reserve``
as one Lua script, so the same holds across instances, and settling as a fire-and-forget
update. ``reserve`` answers where the reservation was made (``"local"`` or ``"shared"``, None
when refused); ``settle`` takes it back.

``balance`` is the stored balance as last read from the database; spending waits in
``pending`` until the batched writer of ``gateway.accounts`` has written it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Protocol

from gateway.errors import ServiceUnavailable
from gateway.redis_client import RedisClient, RedisUnavailable


class BalanceBook(Protocol):
    def available(self, email: str, balance: float) -> float: ...

    async def reserve(self, email: str, balance: float, amount: float) -> str | None: ...

    async def current(self, email: str, balance: float) -> float:
        """What is available now, read where it is kept (for display, not on the hot path)."""
        ...

    def release(self, email: str, amount: float) -> None: ...

    def spend(self, email: str, amount: float) -> None: ...

    def settle(self, email: str, reserved: float, spent: float, where: str) -> None: ...

    async def credit(self, email: str, amount: float) -> None: ...

    def take_pending(self) -> dict[str, float]: ...

    def written(self, debits: dict[str, float]) -> None: ...

    def write_ended(self) -> None: ...


class LocalBalances:
    """Reservations and unwritten spending of this process, per user (email)."""

    def __init__(self) -> None:
        self.reserved: dict[str, float] = {}
        self.pending: dict[str, float] = {}
        self.flushing = 0  # debit writes under way
        self.flushed = 0  # debit writes done

    def available(self, email: str, balance: float) -> float:
        return balance - self.pending.get(email, 0.0) - self.reserved.get(email, 0.0)

    async def reserve(self, email: str, balance: float, amount: float) -> str | None:
        # No await in here: the check and the reservation are one step for the event loop.
        available = self.available(email, balance)
        if available <= 0 or available < amount:
            return None
        self.reserved[email] = self.reserved.get(email, 0.0) + amount
        return "local"

    async def current(self, email: str, balance: float) -> float:
        return self.available(email, balance)

    def release(self, email: str, amount: float) -> None:
        _subtract(self.reserved, email, amount)

    def spend(self, email: str, amount: float) -> None:
        if amount > 0:
            self.pending[email] = self.pending.get(email, 0.0) + amount

    def settle(self, email: str, reserved: float, spent: float, where: str) -> None:
        self.release(email, reserved)
        self.spend(email, spent)

    async def credit(self, email: str, amount: float) -> None:
        """A top-up reached the database (the cached balance is reloaded by the caller)."""

    def take_pending(self) -> dict[str, float]:
        """Spending to write now; ``written`` or ``write_ended`` must follow."""
        self.flushing += 1
        return dict(self.pending)

    def written(self, debits: dict[str, float]) -> None:
        self.flushing = max(self.flushing - 1, 0)
        self.flushed += 1
        for email, amount in debits.items():
            _subtract(self.pending, email, amount)

    def write_ended(self) -> None:
        """A write begun by ``take_pending`` ended without writing (nothing to, or failed)."""
        self.flushing = max(self.flushing - 1, 0)


# --- shared balances (Redis) ---
#
# One hash per user, ``<prefix>bal:<email>``, amounts in nano-USD (integers, so reservations
# and releases add up exactly): ``balance`` is the user's balance as PostgreSQL has it plus
# top-ups minus spending not yet written there; ``reserved`` the sum of reservations in flight
# on every instance. PostgreSQL (``users.balance_usd`` and ``balance_ledger``) stays the source
# of truth; the hash is seeded from it when missing (first use, after a Redis flush, or after a
# day unused) and never written back.

NANO = 1_000_000_000
BALANCE_TTL = 86400

# KEYS[1] hash; ARGV amount, ttl -> {1|0|-1 (missing), available after (nano, as text)}
RESERVE_LUA = """
local b = redis.call('HMGET', KEYS[1], 'balance', 'reserved')
if not b[1] then return {-1, '0'} end
local available = tonumber(b[1]) - tonumber(b[2] or '0')
local amount = tonumber(ARGV[1])
if available <= 0 or available < amount then return {0, string.format('%d', available)} end
redis.call('HINCRBY', KEYS[1], 'reserved', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, string.format('%d', available - amount)}
"""

# KEYS[1] hash; ARGV balance, ttl: create it unless another instance already did.
SEED_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'balance', ARGV[1], 'reserved', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS[1] hash; ARGV released reservation, spent, credited. A missing hash (flushed) is left
# alone: the next reservation seeds it from the database, which then has (or soon has) these.
SETTLE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local reserved = redis.call('HINCRBY', KEYS[1], 'reserved',
                                string.format('%d', -tonumber(ARGV[1])))
if reserved < 0 then redis.call('HSET', KEYS[1], 'reserved', 0) end
redis.call('HINCRBY', KEYS[1], 'balance',
           string.format('%d', tonumber(ARGV[3]) - tonumber(ARGV[2])))
return 1
"""


def nano(usd: float) -> int:
    return round(usd * NANO)


class RedisBalances:
    """``BalanceBook`` on Redis: every instance reserves from the same balance.

    ``reserve`` is one Lua script (check and reserve atomically, across instances); settling
    (release + spend) is one fire-and-forget script. Spending is also queued here for the
    database (``take_pending``/``written``, as ``LocalBalances``), so the ledger of debits in
    PostgreSQL is written by the instance that served the request.

    Redis unreachable: ``redis.call`` raises 503 under ``redis_failure = "closed"``; under
    ``"open"`` this instance reserves locally from the balance it last read from the database,
    and what it spends meanwhile is replayed into Redis once it is back.
    """

    def __init__(self, redis: RedisClient, load: Callable[[str], Awaitable[float]]) -> None:
        self.redis = redis
        self.load = load  # the user's balance in the database now
        self.local = LocalBalances()
        self.known: dict[str, float] = {}  # available balance as last seen in Redis
        self.owed: dict[str, float] = {}  # spent while Redis was down, not yet in Redis
        self._reserve = redis.script(RESERVE_LUA)
        self._seed = redis.script(SEED_LUA)
        self._settle = redis.script(SETTLE_LUA)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> dict[str, float]:
        return self.local.pending

    def _key(self, email: str) -> str:
        return self.redis.key("bal:" + email)

    def available(self, email: str, balance: float) -> float:
        known = self.known.get(email)
        if known is not None:
            return known
        return self.local.available(email, balance)

    async def reserve(self, email: str, balance: float, amount: float) -> str | None:
        key, want = self._key(email), nano(amount)
        try:
            await self._replay()
            for _ in range(3):
                ok, left = await self.redis.call(
                    lambda: self._reserve([key], [want, BALANCE_TTL]), "balances"
                )
                if int(ok) >= 0:
                    self.known[email] = int(left) / NANO
                    if self.owed:  # Redis is back: apply what was spent meanwhile
                        self._spawn(self._replay())
                    return "shared" if int(ok) == 1 else None
                # Not in Redis yet: seed it from the database (minus our unwritten spending).
                seed = nano(await self._stored(email))
                await self.redis.call(partial(self._seed, [key], [seed, BALANCE_TTL]),
                                       "balances")
        except RedisUnavailable:
            self.known.pop(email, None)
            return "local" if await self.local.reserve(email, balance, amount) else None
        return None

    async def current(self, email: str, balance: float) -> float:
        key = self._key(email)
        try:
            found = await self.redis.call(
                lambda: self.redis.client.hmget(key, ["balance", "reserved"]), "balances"
            )
        except (RedisUnavailable, ServiceUnavailable):
            return self.local.available(email, balance)
        if found[0] is None:  # not seeded: the database's balance is all there is
            return self.local.available(email, balance)
        return (int(found[0]) - int(found[1] or 0)) / NANO

    async def _stored(self, email: str) -> float:
        """The database's balance minus this process's spending not yet written there,
        read while no debit write of ours is under way (it could be counted twice or never).
        """
        local = self.local
        for _ in range(20):
            if local.flushing:
                await asyncio.sleep(0.05)
                continue
            mark, unwritten = local.flushed, local.pending.get(email, 0.0)
            stored = await self.load(email)
            if not local.flushing and local.flushed == mark:
                return stored - unwritten
        return await self.load(email) - local.pending.get(email, 0.0)

    def release(self, email: str, amount: float) -> None:
        self.settle(email, amount, 0.0, "shared")

    def spend(self, email: str, amount: float) -> None:
        self.settle(email, 0.0, amount, "shared")

    def settle(self, email: str, reserved: float, spent: float, where: str) -> None:
        if where == "local":
            self.local.release(email, reserved)
            reserved = 0.0
        if spent > 0:
            self.local.spend(email, spent)  # for the database writer
        if reserved <= 0 and spent <= 0:
            return
        self._spawn(self._shared_settle(email, reserved, spent, 0.0))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def credit(self, email: str, amount: float) -> None:
        """A top-up reached the database: add it to the shared balance (if seeded)."""
        await self._shared_settle(email, 0.0, 0.0, amount)

    async def _shared_settle(self, email: str, reserved: float, spent: float,
                             credited: float) -> None:
        key = self._key(email)
        try:
            await self.redis.call(
                lambda: self._settle([key], [nano(reserved), nano(spent), nano(credited)]),
                "balances",
            )
            self.known.pop(email, None)
        except (RedisUnavailable, ServiceUnavailable):
            # The reservation dies with the hash's TTL or a reseed; spending must not be lost.
            if spent or credited:
                self.owed[email] = self.owed.get(email, 0.0) + spent - credited

    async def _replay(self) -> None:
        """Apply to Redis what was spent (or credited) while it was unreachable."""
        if not self.owed:
            return
        owed, self.owed = self.owed, {}
        for email, amount in owed.items():
            await self._shared_settle(email, 0.0, max(amount, 0.0), max(-amount, 0.0))

    def take_pending(self) -> dict[str, float]:
        return self.local.take_pending()

    def written(self, debits: dict[str, float]) -> None:
        self.local.written(debits)

    def write_ended(self) -> None:
        self.local.write_ended()

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _subtract(table: dict[str, float], email: str, amount: float) -> None:
    left = table.get(email, 0.0) - amount
    if left <= 1e-12:
        table.pop(email, None)
    else:
        table[email] = left
