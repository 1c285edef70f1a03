"""The accounts of one gateway process, built in one place: every part gets its dependencies
through its constructor.

``AccountServices`` builds the caches, sessions, keys, balances, limits, admission and the debit
writer; ``start`` (once the store is open) reads the BYOK salt, or writes it on a deployment's
first start. With Redis (``shared``), balances are shared, and changes made here are announced on
the ``accounts`` channel and those made elsewhere applied (``start_shared``): "user <email>",
"policy <key id>", "maintenance", "session <id>", "sessions <email>"; revoked keys travel on the
revocations channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.accounts.balances import DebitWriter
from gateway.accounts.keys import KeyCache
from gateway.accounts.maintenance import refresh_maintenance
from gateway.accounts.notifier import Notifier
from gateway.accounts.secretbox import SALT_SETTING, SecretBox, new_salt
from gateway.accounts.sessions import SESSION_PREFIX, Sessions
from gateway.accounts.users import Accounts
from gateway.accounts.userstate import AccountCache
from gateway.admission import Admission, Limiter
from gateway.balances import BalanceBook, LocalBalances, RedisBalances
from gateway.config import GatewayConfig
from gateway.redis_client import ACCOUNTS, REVOCATIONS, RedisClient
from gateway.storage import AccountsStore, KeyRecord, StorageUnavailable, Store


class AccountServices:
    """Accounts, sessions, keys, balances, limits and admission of one gateway process."""

    def __init__(
        self, config: GatewayConfig, store: Store, shared: RedisClient | None = None
    ) -> None:
        accounts = config.accounts
        self.config = config
        self.shared = shared
        self.store = AccountsStore(store.db)
        self.keys_store = store
        self.box = box = SecretBox(accounts.secret)
        self.admin_key = accounts.admin_key
        self._origin = os.urandom(6).hex()  # tells our own broadcasts from the others'
        self._tasks: set[asyncio.Task[None]] = set()
        balances: BalanceBook = (
            RedisBalances(shared, self._stored_balance) if shared else LocalBalances()
        )
        self.cache = AccountCache(
            self.store, config, box, balances, self._broadcast if shared else None
        )
        self.sessions = Sessions(self.store, accounts, self.cache)
        self.keys = KeyCache(
            store,
            config.storage.key_cache_ttl,
            session_prefix=SESSION_PREFIX,
            sessions=self.sessions.authenticate,
            refuse_blocked=self.cache.refuse_blocked,
        )
        self.notifier = Notifier.from_config(accounts)
        self.limiter = Limiter(config.limits.storage, redis=shared)
        self.accounts = Accounts(
            self.store, store, config, self.cache, self.sessions, self.notifier,
            self.limiter, self.revoked,
        )
        self.admission = Admission(self.cache, self.limiter, accounts.output_reserve_tokens)
        self.writer = DebitWriter(self.cache)
        # (user, event type, data) of account events, for webhooks (gateway.platform sets it).
        self.on_event: Callable[[str, str, dict[str, Any]], None] = lambda *event: None

    def send_events_to(self, sink: Callable[..., None]) -> None:
        """Where account events go: ``sink(user, event_type, data, event_id="")``."""
        self.on_event = self.admission.on_event = sink

    async def start(self) -> None:
        """Once the store is open: the BYOK key, the maintenance switch, the debit writer."""
        if self.box.enabled:
            self.box.unlock(await self.store.setting_once(SALT_SETTING, new_salt()))
        await refresh_maintenance(self.cache)
        self.writer.start()

    def start_shared(self, shared: RedisClient) -> None:
        """Apply account changes announced by the other instances."""
        shared.subscribe(ACCOUNTS, self.changed, on_connected=self._connected,
                         on_lost=self._lost)

    async def _stored_balance(self, email: str) -> float:
        user = await self.store.find_user(email)
        return user.balance_usd if user is not None else 0.0

    async def revoked(self, record: KeyRecord) -> None:
        """A key was revoked here: drop it at once, and on other instances through Redis."""
        self.keys.forget(record.key_hash)
        self.cache.forget_policy(record.id)
        if self.shared is not None:
            await self.shared.publish(REVOCATIONS, record.key_hash)

    # --- changes made on other instances (Redis channel ``<prefix>accounts``) ---

    def _broadcast(self, change: str) -> None:
        assert self.shared is not None
        self._spawn(self.shared.publish(ACCOUNTS, f"{self._origin} {change}"))

    def _set_strict(self, strict: bool) -> None:
        self.cache.strict = strict
        self.sessions.known.strict = strict

    def _lost(self) -> None:
        if self.shared is not None and self.shared.failure == "closed":
            self._set_strict(True)  # changes may be missed: read the database each time

    def _connected(self) -> None:
        self._set_strict(False)
        self.cache.forget_all()  # changes may have been missed while disconnected
        self._spawn(self._refresh_maintenance())

    def changed(self, message: str) -> None:
        origin, _, change = message.partition(" ")
        if origin == self._origin:
            return
        kind, _, value = change.partition(" ")
        if kind == "user":
            self.cache.forget(value, announce=False)
        elif kind == "policy":
            self.cache.forget_policy(value, announce=False)
        elif kind == "session":
            self.sessions.forget_session(value)
        elif kind == "sessions":
            self.sessions.forget_sessions_of(value)
        elif kind == "maintenance":
            self._spawn(self._refresh_maintenance())

    async def _refresh_maintenance(self) -> None:
        with contextlib.suppress(StorageUnavailable):
            await refresh_maintenance(self.cache)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        await self.writer.close()
        if isinstance(self.cache.balances, RedisBalances):
            await self.cache.balances.close()
