"""What the request path knows about users: tier, status, balance, provider keys, key policies.

``AccountCache`` keeps each user's state and each key's policy for ``accounts.cache_ttl``
seconds, then serves them as long again while they are reread in the background (a change made
on this instance drops the entry at once, and is announced to the others); a request waits on
the database only on a miss, or for an entry unused for twice the TTL. Balances are reserved
through ``gateway.balances`` (no ``await`` between check and reservation, so concurrent
requests cannot overspend).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from gateway.accounts.keys import Principal
from gateway.accounts.secretbox import SecretBox
from gateway.accounts.ttl import TTLCache
from gateway.balances import BalanceBook
from gateway.config import GatewayConfig, TierConfig
from gateway.errors import AccountBlocked, ServiceUnavailable
from gateway.storage import AccountsStore, KeyPolicy, StorageUnavailable

UNLIMITED = TierConfig(description="no limits (no tiers configured)")
Broadcast = Callable[[str], None]


@dataclass(slots=True)
class UserState:
    """What the request path needs to know about one user."""

    email: str
    tier: str
    blocked: bool = False
    balance: float = 0.0  # as last read from the database
    registered: bool = False
    byok: dict[str, str] = field(default_factory=dict)  # provider -> decrypted key
    generation: int = 0


class AccountCache:
    """Users' state, key policies and balances in memory; the database only on a miss.

    ``broadcast`` tells the other instances about a change made here (via Redis):
    "user <email>", "policy <key id>", "maintenance", "session <id>", "sessions <email>".
    """

    def __init__(
        self,
        store: AccountsStore,
        config: GatewayConfig,
        box: SecretBox,
        balances: BalanceBook,
        broadcast: Broadcast | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.box = box
        self.balances = balances
        self.ttl = config.accounts.cache_ttl
        self._users: TTLCache[str, UserState] = TTLCache(self.ttl)
        self._policies: TTLCache[str, KeyPolicy] = TTLCache(self.ttl)
        self._broadcast = broadcast
        self._generation = 0
        self.maintenance: str | None = None  # the operator's message while switched on

    @property
    def strict(self) -> bool:
        """While changes from other instances cannot arrive (Redis down, fail closed): no TTL."""
        return self._users.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._users.strict = self._policies.strict = value

    def tier(self, name: str) -> TierConfig:
        tiers = self.config.tiers
        if not tiers:
            return UNLIMITED
        return tiers.get(name) or tiers[self.config.accounts.default_tier]

    async def user(self, principal: Principal) -> UserState:
        state = self._users.get(principal.user)
        if state is not None:
            return state
        try:
            # An expired entry is served while it is reread in the background (ttl.py).
            state = await self._users.lookup(principal.user, partial(self._load, principal))
        except StorageUnavailable as exc:
            raise ServiceUnavailable("The account store is unavailable; retry shortly") from exc
        assert state is not None  # _load always answers
        return state

    async def refuse_blocked(self, principal: Principal) -> None:
        """403 if ``principal``'s account is blocked (its owner may still log in and look)."""
        if (await self.user(principal)).blocked:
            raise AccountBlocked(
                "This account is blocked: contact the operator of this gateway"
            )

    async def _load(self, principal: Principal) -> UserState:
        generation = self._generation
        record = await self.store.find_user(principal.user) if principal.user else None
        state = UserState(email=principal.user, tier=principal.tier, generation=generation)
        if record is not None:
            state.tier, state.blocked = record.tier, record.status == "blocked"
            state.balance, state.registered = record.balance_usd, True
            if self.box.enabled:
                for provider, sealed, _, _ in await self.store.provider_keys(record.email):
                    key = self.box.open(sealed)
                    if key:
                        state.byok[provider] = key
        current = self._users.stale(principal.user)
        if current is not None and generation != self._generation:
            # A debit was written while we read: keep the adjusted balance we have.
            state.balance = current.balance
        return state

    async def policy(self, key_id: str) -> KeyPolicy:
        cached = self._policies.get(key_id)
        if cached is not None:
            return cached
        try:
            policy = await self._policies.lookup(key_id, partial(self._read_policy, key_id))
        except StorageUnavailable:
            return KeyPolicy()
        return policy or KeyPolicy()

    async def _read_policy(self, key_id: str) -> KeyPolicy:
        return (await self.store.key_policies([key_id])).get(key_id, KeyPolicy())

    def forget(self, email: str, announce: bool = True) -> None:
        """Drop a user's cached state at once (after a change), here and on other instances."""
        self._users.pop(email)
        if announce:
            self.announce("user " + email)

    def forget_all(self) -> None:
        self._users.clear()
        self._policies.clear()

    def forget_policy(self, key_id: str, announce: bool = True) -> None:
        self._policies.pop(key_id)
        if announce:
            self.announce("policy " + key_id)

    def announce(self, change: str) -> None:
        if self._broadcast is not None:
            self._broadcast(change)

    async def credited(self, email: str, amount: float) -> None:
        """A top-up was written to the database: the shared balance follows at once."""
        await self.balances.credit(email, amount)

    # --- balances (``gateway.balances``) ---

    def available(self, state: UserState) -> float:
        return self.balances.available(state.email, state.balance)

    async def current_balance(self, state: UserState) -> float:
        """The balance available now, as every instance sees it (for ``/v1/auth/me``)."""
        return await self.balances.current(state.email, state.balance)

    async def reserve(self, state: UserState, amount: float) -> str | None:
        """Where the reservation was made ("local", "shared"), None when refused."""
        return await self.balances.reserve(state.email, state.balance, amount)

    def written(self, debits: dict[str, float]) -> None:
        """Debits reached the database: move them from pending into the cached balances."""
        self._generation += 1
        self.balances.written(debits)
        for email, amount in debits.items():
            state = self._users.stale(email)
            if state is not None:
                state.balance -= amount
