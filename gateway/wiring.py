"""Wiring: ``build_gateway(config)`` builds every service of one gateway process, each given
its dependencies through its constructor, and ``chat_endpoint`` assembles the request
pipeline (gateway/pipeline/) from them. Nothing is assigned after construction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog
from msgspec import UNSET, UnsetType

from adapters.base import Adapter, ProviderSettings
from adapters.client import Ingress
from adapters.overlay import Overlay
from adapters.registry import build_adapter, build_video_adapter, default_base_url, ingress
from adapters.upstream import Timeouts, UpstreamClient
from adapters.video import VideoAdapter
from gateway.accounts.keys import KeyCache
from gateway.accounts.services import AccountServices
from gateway.admission import Admission
from gateway.cache import ResponseCache, build_cache
from gateway.config import ConfigError, GatewayConfig, default_prices, has_price, model_prices
from gateway.ledger import Ledger
from gateway.logs import FastInfo
from gateway.metrics import Metrics
from gateway.pipeline.dispatch import Dispatcher, whole_answers
from gateway.pipeline.endpoint import Endpoint
from gateway.pipeline.intake import Intake
from gateway.pipeline.operation import ChatOperation, Operation
from gateway.pipeline.settle import Settler
from gateway.pipeline.streaming import StreamGauge
from gateway.platform.service import Platform
from gateway.redis_client import REVOCATIONS, RedisClient
from gateway.redis_health import RedisHealth
from gateway.responses.keeper import ResponseKeeper
from gateway.responses.memory import ResponseMemory
from gateway.responses.operation import ResponsesOperation
from gateway.storage import StorageUnavailable, Store, open_database
from gateway.video.billing import Reservations
from gateway.video.jobs import VideoJobs
from gateway.video.poller import VideoPoller
from gateway.video.service import VideoService
from routers.attempts import RetryPolicy
from routers.catalog import Catalog, Model
from routers.health import Health, MemoryHealth
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
            mode=model.mode,
            price_per_image=_unit_price(model.price_per_image),
            price_per_second=_unit_price(model.price_per_second),
            price_per_video=_unit_price(model.price_per_video),
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


def _unit_price(price: float | UnsetType) -> float:
    return 0.0 if isinstance(price, UnsetType) else float(price)


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


def build_planner(
    config: GatewayConfig, catalog: Catalog, health: Health | None = None
) -> Planner:
    """The planner: catalog, named routers, personas and deployment health."""

    def models(names: list[str]) -> tuple[Model, ...]:
        # Names of switched-off models drop out; the config check refused unknown ones.
        found = (catalog.get(name) for name in names)
        return tuple(dict.fromkeys(m for m in found if m is not None))

    routers = []
    for name, spec in config.routers.items():
        chain = models(spec.models)
        if spec.kind == "free" and not spec.models:
            # Routers serve chat: free embedding or moderation models stay out of the rotation.
            chain = tuple(m for m in catalog if m.free and m.mode == "chat")
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
    if health is None:
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
    adapters: dict[str, Adapter] = {}
    for name, provider in config.providers.items():
        settings = ProviderSettings(
            name=name,
            base_url=provider.base_url or default_base_url(provider.kind),
            api_key=provider.api_key,
            headers=dict(provider.headers),
            tokens_per_second=provider.tokens_per_second,
            max_tokens_field=provider.max_tokens_field,
            responses_api=provider.responses_api,
        )
        try:
            adapters[name] = build_adapter(provider.kind, settings, client)
        except ValueError as exc:
            raise ConfigError(f"providers.{name}.kind: {exc}") from exc
    return adapters


@dataclass(frozen=True, eq=False)
class Gateway:
    """Every service of one gateway process, built once by ``build_gateway``.

    Nothing here is assigned after construction; ``start`` connects and starts the background
    tasks, ``stop`` ends them."""

    config: GatewayConfig
    catalog: Catalog
    planner: Planner
    health: Health
    retry_policy: RetryPolicy
    client: UpstreamClient
    adapters: dict[str, Adapter]
    store: Store
    keys: KeyCache
    ledger: Ledger
    accounts: AccountServices
    admission: Admission
    shared: RedisClient | None  # Redis (limits.storage = "redis://…"), for every feature needing it
    cache: ResponseCache | None
    metrics: Metrics
    streams: StreamGauge
    log: Any
    platform: Platform  # telemetry, webhooks and their background loops (docs/platform.md)
    video: VideoService  # video jobs and their poller (docs/video.md)
    responses: ResponseKeeper  # stored Responses API answers (docs/responses.md)

    async def start(self) -> None:
        await self.store.db.connect()
        await self.store.migrate()
        self.ledger.start()
        await self.accounts.start()
        if self.shared is not None:
            self.shared.subscribe(
                REVOCATIONS,
                self.keys.forget,
                on_connected=self._revocations_connected,
                on_lost=self._revocations_lost,
            )
            self.accounts.start_shared(self.shared)
        if isinstance(self.health, RedisHealth):
            self.health.start()
        self.platform.start()
        self.video.poller.start()
        self.responses.start()
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

    def _revocations_connected(self) -> None:
        self.keys.strict = False
        self.keys.expire_all()

    def _revocations_lost(self) -> None:
        if self.config.limits.redis_failure == "closed":
            self.keys.strict = True

    async def stop(self) -> None:
        await self.metrics.stop()
        await self.video.poller.stop()
        await self.platform.stop()
        await self.accounts.stop()
        if isinstance(self.health, RedisHealth):
            await self.health.close()
        if self.shared is not None:
            await self.shared.close()
        await self.ledger.close()
        await self.responses.stop()
        await self.client.close()
        await self.store.close()


def build_shared(config: GatewayConfig) -> RedisClient | None:
    """The Redis connection when ``limits.storage`` names Redis."""
    limits = config.limits
    url = limits.storage.removeprefix("async+")
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisClient(url, limits.redis_prefix, limits.redis_failure)
    return None


def build_health(config: GatewayConfig, shared: RedisClient | None) -> Health:
    """Deployment health: shared through Redis unless ``routing.health = "local"``."""
    routing = config.routing
    if shared is not None and routing.health != "local":
        return RedisHealth(shared, routing.allowed_fails, routing.cooldown, routing.max_cooldown)
    return MemoryHealth(routing.allowed_fails, routing.cooldown, routing.max_cooldown)


def build_client(config: GatewayConfig) -> UpstreamClient:
    upstream = config.upstream
    return UpstreamClient(
        Timeouts(
            connect=upstream.connect_timeout,
            first_byte=upstream.first_byte_timeout,
            idle=upstream.idle_timeout,
        ),
        max_connections=upstream.max_connections,
        max_connections_per_host=upstream.max_connections_per_host,
    )


def live_figures(
    ledger: Ledger, streams: StreamGauge, shared: RedisClient | None
) -> Callable[[], dict[str, float]]:
    """What a metrics scrape reads at that moment: gauges and counters kept elsewhere."""

    def figures() -> dict[str, float]:
        live = {
            "gateway_open_streams": float(streams.open),
            "gateway_ledger_pending_rows": float(ledger.pending),
            "gateway_ledger_dropped_rows_total": float(ledger.dropped),
        }
        if shared is not None:
            live["gateway_redis_up"] = 1.0 if shared.healthy else 0.0
        return live

    return figures


def build_gateway(
    config: GatewayConfig,
    client: UpstreamClient | None = None,
    adapters: Mapping[str, Adapter] | None = None,
) -> Gateway:
    """Every service of one gateway, each given its dependencies.

    ``client`` replaces the upstream HTTP client and ``adapters`` the adapters of the providers
    they name: the seams of the in-process tests and of ``bench.micro``."""
    catalog = build_catalog(config)
    shared = build_shared(config)
    health = build_health(config, shared)
    client = client or build_client(config)
    storage = config.storage
    try:
        store = Store(open_database(config.database_url, storage.pool_size))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    accounts = AccountServices(config, store, shared)
    ledger = Ledger(store, batch_size=storage.ledger_batch_size,
                    flush_interval=storage.ledger_flush_interval)
    streams = StreamGauge()
    platform = Platform(config, lambda: store.db)
    accounts.send_events_to(platform.emit)
    admission = Admission(accounts.cache, accounts.limiter, config.accounts.output_reserve_tokens)
    admission.on_event = platform.emit
    metrics = Metrics.for_config(config, live_figures(ledger, streams, shared))
    planner = build_planner(config, catalog, health)
    return Gateway(
        config=config,
        catalog=catalog,
        planner=planner,
        health=health,
        retry_policy=build_retry_policy(config),
        client=client,
        adapters={**build_adapters(config, client), **(adapters or {})},
        store=store,
        keys=accounts.keys,
        ledger=ledger,
        accounts=accounts,
        admission=admission,
        shared=shared,
        cache=build_cache(config, shared),
        metrics=metrics,
        streams=streams,
        log=FastInfo(structlog.get_logger("gateway.request")),
        platform=platform,
        video=build_video(config, client, accounts, catalog, planner, admission, store,
                          metrics, platform),
        responses=ResponseKeeper(config.responses, lambda: store.db),
    )


def build_video_adapters(config: GatewayConfig, client: UpstreamClient) -> dict[str, VideoAdapter]:
    """The video side of every configured provider whose kind serves video."""
    adapters: dict[str, VideoAdapter] = {}
    for name, provider in config.providers.items():
        settings = ProviderSettings(
            name=name, base_url=provider.base_url or default_base_url(provider.kind),
            api_key=provider.api_key, headers=dict(provider.headers))
        adapter = build_video_adapter(provider.kind, settings, client)
        if adapter is not None:
            adapters[name] = adapter
    return adapters


def build_video(config: GatewayConfig, client: UpstreamClient, accounts: AccountServices,
                catalog: Catalog, planner: Planner, admission: Admission, store: Store,
                metrics: Metrics, platform: Platform) -> VideoService:
    """Video jobs: their table, the providers' video APIs, the poller and billing."""
    jobs = VideoJobs(store.db)
    adapters = build_video_adapters(config, client)
    reservations = Reservations(admission, accounts.limiter)
    poller = VideoPoller(config.video, jobs, adapters, catalog, reservations, metrics,
                         platform.emit)
    return VideoService(config, accounts.keys, planner, admission, jobs, adapters,
                        reservations, poller)


def chat_endpoint(gateway: Gateway, ingress: Ingress) -> Endpoint:
    """The chat endpoint of one ingress dialect, wired to the gateway's services (whole
    answers through the response cache, when it is on)."""
    return operation_endpoint(gateway, ChatOperation(ingress), cached=True)


def operation_endpoint(gateway: Gateway, operation: Operation, cached: bool = False) -> Endpoint:
    """The endpoint of ``operation`` (chat in one dialect, or a ``WholeOperation``), wired to
    the gateway's services; ``cached``: whole answers go through the response cache."""
    admission = gateway.admission
    dispatcher = Dispatcher(gateway.adapters, gateway.health, gateway.retry_policy)
    complete = whole_answers(dispatcher, operation)
    if cached and gateway.cache is not None:
        complete = gateway.cache.decorate(complete, operation.dialect, gateway.catalog,
                                          gateway.metrics)
    return Endpoint(
        operation,
        Intake(operation, gateway.keys, gateway.planner, admission,
               gateway.config.server.max_body_bytes),
        dispatcher,
        complete,
        Settler(gateway.ledger, admission, gateway.metrics, gateway.log),
        gateway.streams,
        first_byte=gateway.client.timeouts.first_byte,
        commit_timeout=gateway.config.server.commit_timeout,
    )


def responses_endpoint(gateway: Gateway) -> Endpoint:
    """``POST /v1/responses``: the chat pipeline in the Responses dialect, with stored
    responses (``gateway.responses``): ``previous_response_id`` expanded at intake, each
    answer kept before its end is sent."""
    endpoint = operation_endpoint(gateway, ResponsesOperation(ingress("responses")), cached=True)
    memory = ResponseMemory(gateway.responses, endpoint.operation.parse)
    return replace(
        endpoint,
        intake=replace(endpoint.intake, expand=memory.expand),
        complete=memory.whole(endpoint.complete),
        stream_end=memory.stream_end,
    )
