"""HTTP routes of the platform APIs: plugins, updates and credit prices (public), telemetry
(anonymous, bounded; stats for the admin key and the ``stats_tiers``), webhooks (a user's own,
with a ``manage`` key or a session)."""

from __future__ import annotations

import hmac
import time
from typing import Any, Protocol

from starlette.requests import Request
from starlette.routing import Route

from gateway.accounts.http import GatewayView, bearer, caller, client_address, guard, query_int
from gateway.errors import NotFound, PermissionDenied
from gateway.platform import catalog
from gateway.platform.service import Platform
from gateway.platform.telemetry import Telemetry, read_limited
from gateway.platform.webhook_routes import webhook_routes


class PlatformView(GatewayView, Protocol):
    """What the platform routes need of the gateway (``gateway.wiring.Gateway``)."""

    @property
    def platform(self) -> Platform: ...


def catalog_routes(gateway: PlatformView) -> list[Route]:
    """Plugins, updates and credit prices: read from the config, no key needed."""
    config = gateway.config

    async def plugins(request: Request) -> Any:
        params = request.query_params
        found = catalog.find_plugins(config.plugins, params.get("tag", ""), params.get("q", ""))
        return {"object": "list", "data": found}

    async def plugin(request: Request) -> Any:
        return catalog.get_plugin(config.plugins, request.path_params["name"])

    async def updates(request: Request) -> Any:
        return catalog.latest(config.releases)

    async def check(request: Request) -> Any:
        return catalog.check_update(config.releases, request.query_params.get("current", ""))

    async def pricing(request: Request) -> Any:
        return catalog.credit_pricing(config, gateway.catalog)

    return [
        Route("/v1/plugins", guard(plugins), methods=["GET"]),
        Route("/v1/plugins/{name}", guard(plugin), methods=["GET"]),
        Route("/v1/updates", guard(updates), methods=["GET"]),
        Route("/v1/updates/check", guard(check), methods=["GET"]),
        Route("/api/credits/pricing", guard(pricing), methods=["GET"]),
    ]


def telemetry_routes(gateway: PlatformView) -> list[Route]:
    """The anonymous telemetry endpoints and the stats."""
    config = gateway.config

    def telemetry(request: Request) -> Telemetry:
        if not config.telemetry.enabled:
            raise NotFound("Telemetry is switched off on this gateway")
        service = gateway.platform.telemetry
        service.admit(client_address(request, config.server.trusted_proxies))
        return service

    async def receive(request: Request, kind: str) -> Any:
        service = telemetry(request)
        body = await read_limited(request, config.telemetry.max_body_bytes)
        now = time.time()
        if kind == "ping":
            rows = [service.ping_row(body, now)]
        elif kind == "event":
            rows = [service.event_row(body, now)]
        else:
            rows = service.batch_rows(body, now)
        await service.store(rows)
        return {"object": "telemetry.receipt", "accepted": len(rows)}

    async def ping(request: Request) -> Any:
        return await receive(request, "ping")

    async def event(request: Request) -> Any:
        return await receive(request, "event")

    async def batch(request: Request) -> Any:
        return await receive(request, "batch")

    async def stats(request: Request) -> Any:
        if not config.telemetry.enabled:
            raise NotFound("Telemetry is switched off on this gateway")
        await stats_reader(gateway, request)
        days = query_int(request, "days", "30", 366)
        return await gateway.platform.telemetry.stats(days, time.time())

    return [
        Route("/v1/telemetry/ping", guard(ping), methods=["POST"]),
        Route("/v1/telemetry/event", guard(event), methods=["POST"]),
        Route("/v1/telemetry/batch", guard(batch), methods=["POST"]),
        Route("/v1/telemetry/stats", guard(stats), methods=["GET"]),
    ]


async def stats_reader(gateway: PlatformView, request: Request) -> None:
    """The admin key, or a user of a ``telemetry.stats_tiers`` tier; else 401 or 403."""
    admin = gateway.accounts.admin_key
    given = bearer(request) or ""
    if admin and hmac.compare_digest(given.encode(), admin.encode()):
        return
    services = gateway.accounts
    who = await caller(services, request)
    state = await services.cache.user(who)
    tier = state.tier if state.registered else who.tier
    if tier not in gateway.config.telemetry.stats_tiers:
        raise PermissionDenied("Telemetry stats are for the admin key and the "
                               f"{', '.join(gateway.config.telemetry.stats_tiers)} tier")


def platform_routes(gateway: PlatformView) -> list[Route]:
    """Every platform route, to append to the app's."""
    return [*catalog_routes(gateway), *telemetry_routes(gateway), *webhook_routes(gateway)]
