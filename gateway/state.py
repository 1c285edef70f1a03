"""Process-wide state of one gateway: config, catalog, adapters, store, caches, ledger."""

from __future__ import annotations

import os

import structlog
from msgspec import UNSET

from adapters.base import Adapter, ProviderSettings
from adapters.registry import build_adapter
from adapters.upstream import Timeouts, UpstreamClient
from gateway.accounts import (
    SESSION_PREFIX,
    AccountCache,
    Accounts,
    DebitWriter,
    Notifier,
    SecretBox,
    Sessions,
    refresh_maintenance,
)
from gateway.accounts_store import AccountsStore
from gateway.auth import KeyCache
from gateway.config import GatewayConfig
from gateway.ledger import Ledger
from gateway.limits import Admission, Limiter
from gateway.storage import Store, open_store
from gateway.usage_estimate import warm_up
from routers.catalog import Catalog, ModelInfo
from routers.plan import Planner


def build_catalog(config: GatewayConfig) -> Catalog:
    models = [
        ModelInfo(
            id=model.id,
            provider=model.provider,
            upstream=model.upstream or model.id.split("/", 1)[-1],
            input_price=model.input_price,
            output_price=model.output_price,
            cached_input_price=None
            if model.cached_input_price is UNSET
            else float(model.cached_input_price),
            context=model.context,
            max_output=model.max_output,
            capabilities=frozenset(model.capabilities),
            aliases=tuple(model.aliases),
            free=model.free,
            credits=model.credits,
        )
        for model in config.models
    ]
    open_providers = [name for name, p in config.providers.items() if p.allow_any_model]
    return Catalog(models, open_providers)


def build_adapters(config: GatewayConfig, client: UpstreamClient) -> dict[str, Adapter]:
    return {
        name: build_adapter(
            provider.kind,
            ProviderSettings(
                name=name,
                base_url=provider.base_url,
                api_key=provider.api_key,
                headers=dict(provider.headers),
                tokens_per_second=provider.tokens_per_second,
            ),
            client,
        )
        for name, provider in config.providers.items()
    }


class Gateway:
    """Everything a request handler needs, built once per process."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.catalog = build_catalog(config)
        self.planner = Planner(self.catalog)
        upstream = config.upstream
        self.client = UpstreamClient(
            Timeouts(
                connect=upstream.connect_timeout,
                first_byte=upstream.first_byte_timeout,
                idle=upstream.idle_timeout,
            ),
            max_connections=upstream.max_connections,
            max_connections_per_host=upstream.max_connections_per_host,
        )
        self.adapters = build_adapters(config, self.client)
        self.log = structlog.get_logger("gateway.request")
        self.open_streams = 0
        self._store: Store | None = None
        self._keys: KeyCache | None = None
        self._ledger: Ledger | None = None
        self._accounts: AccountServices | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("gateway not started")
        return self._store

    @property
    def keys(self) -> KeyCache:
        if self._keys is None:
            raise RuntimeError("gateway not started")
        return self._keys

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise RuntimeError("gateway not started")
        return self._ledger

    @property
    def accounts(self) -> AccountServices:
        if self._accounts is None:
            raise RuntimeError("gateway not started")
        return self._accounts

    async def start(self) -> None:
        storage = self.config.storage
        self._store = await open_store(storage.url)
        self._keys = KeyCache(self._store, storage.key_cache_ttl)
        self._ledger = Ledger(
            self._store,
            batch_size=storage.ledger_batch_size,
            flush_interval=storage.ledger_flush_interval,
        )
        self._ledger.start()
        self._accounts = AccountServices(self.config, self._store, self._keys)
        await self._accounts.start()

    async def stop(self) -> None:
        if self._accounts is not None:
            await self._accounts.stop()
        if self._ledger is not None:
            await self._ledger.close()
        await self.client.close()
        if self._store is not None:
            await self._store.close()


class AccountServices:
    """Accounts, sessions, balances, limits and admission of one gateway process."""

    def __init__(self, config: GatewayConfig, store: Store, keys: KeyCache) -> None:
        accounts = config.accounts
        self.store = AccountsStore(store.db)
        self.box = SecretBox(accounts.secret or os.environ.get("GATEWAY_SECRET", ""))
        self.admin_key = accounts.admin_key or os.environ.get("GATEWAY_ADMIN_KEY", "")
        self.cache = AccountCache(self.store, config, self.box)
        self.sessions = Sessions(self.store, accounts, self.cache)
        self.notifier = Notifier(accounts.notify_webhook)
        self.accounts = Accounts(self.store, config, self.cache, self.sessions, self.notifier)
        self.limiter = Limiter(config.limits.storage)
        self.admission = Admission(self.cache, self.limiter, accounts.output_reserve_tokens)
        self.writer = DebitWriter(self.cache)
        keys.session_prefix = SESSION_PREFIX
        keys.sessions = self.sessions.authenticate

    async def start(self) -> None:
        await refresh_maintenance(self.cache)
        self.writer.start()
        warm_up()

    async def stop(self) -> None:
        await self.writer.close()
