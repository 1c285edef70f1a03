"""Process-wide state of one gateway: config, catalog, adapters, store, caches, ledger."""

from __future__ import annotations

import asyncio
import os

import structlog
from msgspec import UNSET

from adapters.base import Adapter, ProviderSettings
from adapters.registry import build_adapter
from adapters.upstream import Timeouts, UpstreamClient
from gateway.auth import KeyCache
from gateway.cache import ResponseCache, build_cache
from gateway.config import GatewayConfig
from gateway.ledger import Ledger
from gateway.metrics import Metrics
from gateway.shared import REVOCATIONS, Shared
from gateway.storage import StorageUnavailable, Store, open_store
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
        # Redis (limits.storage = "redis://…"), shared by every feature that needs it.
        self.shared: Shared | None = None
        self.cache: ResponseCache | None = None
        self.metrics = Metrics()

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

    async def start(self) -> None:
        storage = self.config.storage
        self._store = await open_store(storage.url, storage.pool_size)
        self._keys = KeyCache(self._store, storage.key_cache_ttl)
        self._ledger = Ledger(
            self._store,
            batch_size=storage.ledger_batch_size,
            flush_interval=storage.ledger_flush_interval,
        )
        self._ledger.start()
        self._start_shared()
        if os.environ.get("GATEWAY_METRICS_DIR"):
            self.metrics.start_export(os.environ["GATEWAY_METRICS_DIR"])

    async def ready(self) -> dict[str, str]:
        """What ``/ready`` reports: each dependency "ok" or why not."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.store.ping(), timeout=2.0)
            checks["store"] = "ok"
        except (StorageUnavailable, TimeoutError) as exc:
            checks["store"] = f"unavailable: {exc or 'timeout'}"
        if self.shared is not None:
            checks["redis"] = "ok" if await self.shared.ping() else "unavailable"
        return checks

    def metrics_text(self) -> bytes:
        gauges = self.metrics.gauges
        gauges["gateway_open_streams"] = self.open_streams
        if self._ledger is not None:
            gauges["gateway_ledger_pending_rows"] = self._ledger.pending
            gauges["gateway_ledger_dropped_rows_total"] = self._ledger.dropped
        if self.shared is not None:
            gauges["gateway_redis_up"] = 1.0 if self.shared.healthy else 0.0
        return self.metrics.render()

    def _start_shared(self) -> None:
        limits = self.config.limits
        if limits.storage.startswith(("redis://", "rediss://", "unix://")):
            self.shared = Shared(limits.storage, limits.redis_prefix, limits.redis_failure)
            self.shared.subscribe(
                REVOCATIONS,
                self.keys.forget,
                on_connected=self._revocations_connected,
                on_lost=self._revocations_lost,
            )
        self.cache = build_cache(self.config, self.shared)

    def _revocations_connected(self) -> None:
        self.keys.strict = False
        self.keys.expire_all()

    def _revocations_lost(self) -> None:
        if self.config.limits.redis_failure == "closed":
            self.keys.strict = True

    async def revoked(self, key_hash: str) -> None:
        """A key was revoked on this instance: drop it here, and everywhere via Redis."""
        self.keys.forget(key_hash)
        if self.shared is not None:
            await self.shared.publish(REVOCATIONS, key_hash)

    async def stop(self) -> None:
        await self.metrics.stop()
        if self.shared is not None:
            await self.shared.close()
        if self._ledger is not None:
            await self._ledger.close()
        await self.client.close()
        if self._store is not None:
            await self._store.close()
