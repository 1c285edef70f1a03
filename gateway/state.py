"""Process-wide state of one gateway: config, catalog, adapters, store, caches, ledger."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import structlog
from msgspec import UNSET

from adapters.base import Adapter, ProviderSettings
from adapters.overlay import Overlay
from adapters.registry import build_adapter
from adapters.upstream import Timeouts, UpstreamClient
from gateway.accounts.keys import KeyCache
from gateway.accounts.services import AccountServices
from gateway.cache import ResponseCache, build_cache
from gateway.config import GatewayConfig, default_prices, has_price, model_prices
from gateway.ledger import Ledger
from gateway.metrics import Metrics
from gateway.redis_client import REVOCATIONS, RedisClient
from gateway.redis_health import RedisHealth
from gateway.storage import StorageUnavailable, Store, open_store
from routers.attempts import RetryPolicy
from routers.catalog import Catalog, Model
from routers.health import MemoryHealth
from routers.named import OCR_PROMPT, Router, Rule
from routers.personas import Persona
from routers.plan import Planner


def build_catalog(config: GatewayConfig) -> Catalog:
    models = [
        _with_deployments(config, Model(
            id=model.id,
            provider=model.provider,
            upstream=model.upstream or model.id.split("/", 1)[-1],
            input_price=model_prices(config, model)[0],
            output_price=model_prices(config, model)[1],
            priced=has_price(config, model),
            cached_input_price=None
            if model.cached_input_price is UNSET
            else float(model.cached_input_price),
            context=model.context,
            max_output=model.max_output,
            capabilities=frozenset(model.capabilities),
            aliases=tuple(model.aliases),
            free=model.free,
            credits=model.credits,
            fallbacks=tuple(model.fallbacks),
            strategy=model.strategy,
            weight=model.weight,
        ), index)
        for index, model in enumerate(config.models)
    ]
    open_providers = [name for name, p in config.providers.items() if p.allow_any_model]
    disabled = config.runtime.disabled_providers
    switched_off = {
        name: f"its provider '{provider}' is switched off "
        f"({disabled.get(provider, 'its key')} is not set)"
        for name, provider in config.runtime.disabled_models.items()
    }
    for provider, variable in disabled.items():
        switched_off[f"{provider}/*"] = (
            f"provider '{provider}' is switched off ({variable} is not set)"
        )
    return Catalog(models, open_providers, switched_off, default_prices(config))


def _with_deployments(config: GatewayConfig, model: Model, index: int) -> Model:
    """``model`` with its configured deployments (those whose provider is on) attached."""
    extra = [
        replace(
            model,
            provider=deployment.provider,
            upstream=deployment.upstream or model.upstream,
            weight=deployment.weight,
            health_key="",
        )
        for deployment in config.models[index].deployments
        if deployment.provider in config.providers
    ]
    if not extra:
        return model
    return replace(model, deployments=(model, *extra))


def _overlay(system: str, temperature: object, max_tokens: object) -> Overlay | None:
    overlay = Overlay(
        system=system,
        temperature=float(temperature) if isinstance(temperature, int | float) else None,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
    )
    return overlay if overlay != Overlay() else None


def build_planner(config: GatewayConfig, catalog: Catalog) -> Planner:
    """The planner: catalog, named routers, personas and deployment health."""

    def models(names: list[str]) -> tuple[Model, ...]:
        # Names of switched-off models drop out; the config check refused unknown ones.
        found = (catalog.get(name) for name in names)
        return tuple(dict.fromkeys(m for m in found if m is not None))

    routers = []
    for name, spec in config.routers.items():
        chain = models(spec.models)
        if spec.kind == "free" and not spec.models:
            chain = tuple(m for m in catalog if m.free)
        prompt = spec.prompt or (OCR_PROMPT if spec.kind == "ocr" else "")
        temperature = spec.temperature
        if spec.kind == "ocr" and temperature is UNSET:
            temperature = 0.0
        routers.append(
            Router(
                name=name,
                kind=spec.kind,
                models=chain,
                rules=tuple(
                    Rule(rule.when, models(rule.models), rule.min_prompt_tokens)
                    for rule in spec.rules
                ),
                overlay=_overlay(prompt, temperature, spec.max_tokens),
                description=spec.description,
            )
        )
    personas = [
        Persona(
            name=name,
            target=spec.target,
            overlay=_overlay(spec.system, spec.temperature, spec.max_tokens) or Overlay(),
            description=spec.description,
        )
        for name, spec in config.personas.items()
    ]
    routing = config.routing
    health = MemoryHealth(routing.allowed_fails, routing.cooldown, routing.max_cooldown)
    return Planner(catalog, routers, personas, health, routing.router_prefixes)


def build_retry_policy(config: GatewayConfig) -> RetryPolicy:
    routing = config.routing
    return RetryPolicy(
        retries=routing.retries,
        backoff_base=routing.backoff_base,
        backoff_max=routing.backoff_max,
        max_wait=routing.max_retry_wait,
    )


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
                max_tokens_field=provider.max_tokens_field,
                responses_api=provider.responses_api,
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
        self.planner = build_planner(config, self.catalog)
        self.retry_policy = build_retry_policy(config)
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
        # Redis (limits.storage = "redis://…"), shared by every feature that needs it.
        self.shared: RedisClient | None = None
        self.cache: ResponseCache | None = None
        self.metrics = Metrics.for_config(config, self._live_figures)

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
        self._store = await open_store(self.config.database_url, storage.pool_size)
        self._ledger = Ledger(
            self._store,
            batch_size=storage.ledger_batch_size,
            flush_interval=storage.ledger_flush_interval,
        )
        self._ledger.start()
        self.shared = self._open_shared()
        self._accounts = AccountServices(self.config, self._store, self.shared)
        self._keys = self._accounts.keys
        await self._accounts.start()
        self._start_shared()
        if self.config.runtime.metrics_dir:
            await self.metrics.share(self.config.runtime.metrics_dir)

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

    def _live_figures(self) -> dict[str, float]:
        """The gauges (and counters kept elsewhere) a scrape reads at that moment."""
        figures = {"gateway_open_streams": float(self.open_streams)}
        if self._ledger is not None:
            figures["gateway_ledger_pending_rows"] = self._ledger.pending
            figures["gateway_ledger_dropped_rows_total"] = self._ledger.dropped
        if self.shared is not None:
            figures["gateway_redis_up"] = 1.0 if self.shared.healthy else 0.0
        return figures

    def _open_shared(self) -> RedisClient | None:
        limits = self.config.limits
        url = limits.storage.removeprefix("async+")
        if url.startswith(("redis://", "rediss://", "unix://")):
            return RedisClient(url, limits.redis_prefix, limits.redis_failure)
        return None

    def _start_shared(self) -> None:
        if self.shared is not None:
            self.shared.subscribe(
                REVOCATIONS,
                self.keys.forget,
                on_connected=self._revocations_connected,
                on_lost=self._revocations_lost,
            )
            self.accounts.start_shared(self.shared)
            routing = self.config.routing
            if routing.health != "local":
                health = RedisHealth(self.shared, routing.allowed_fails, routing.cooldown,
                                      routing.max_cooldown)
                health.start()
                self.planner.health = health
        self.cache = build_cache(self.config, self.shared)

    def _revocations_connected(self) -> None:
        self.keys.strict = False
        self.keys.expire_all()

    def _revocations_lost(self) -> None:
        if self.config.limits.redis_failure == "closed":
            self.keys.strict = True

    async def stop(self) -> None:
        await self.metrics.stop()
        if self._accounts is not None:
            await self._accounts.stop()
        if isinstance(self.planner.health, RedisHealth):
            await self.planner.health.close()
        if self.shared is not None:
            await self.shared.close()
        if self._ledger is not None:
            await self._ledger.close()
        await self.client.close()
        if self._store is not None:
            await self._store.close()
