"""``/v1/admin/*`` (the admin key as Bearer) and the public tier list."""

from __future__ import annotations

import hmac
import time
from typing import Any

import msgspec
from starlette.requests import Request

from gateway.accounts.auth_routes import Table
from gateway.accounts.billing import usage_of_everyone
from gateway.accounts.http import GatewayView, bearer, query_int, read_body
from gateway.accounts.maintenance import set_maintenance
from gateway.errors import AuthenticationFailed, BadRequest, NotFound, PermissionDenied


def deployment_health(gateway: GatewayView) -> list[dict[str, Any]]:
    """Each catalog deployment's health: whether it is benched and until when (Unix seconds),
    requests in flight, and its latency average."""
    health = gateway.planner.health
    now, clock = time.time(), time.monotonic()  # health keeps monotonic times
    seen: dict[str, dict[str, Any]] = {}
    for model in gateway.catalog:
        for target in model.all_deployments:
            key = target.health_key
            if key in seen:
                seen[key]["models"].append(model.id)
                continue
            until = health.benched_until(key, clock)
            seen[key] = {
                "deployment": key, "provider": target.provider, "upstream": target.upstream,
                "models": [model.id], "benched": until > 0,
                "benched_until": round(now + until - clock, 1) if until else None,
                "rate_limited": until > 0 and health.rate_limited(key),
                "in_flight": health.in_flight(key), "latency_s": health.latency(key),
            }
    return list(seen.values())


def admin_routes(gateway: GatewayView) -> Table:
    """(path, handler, methods) of the admin routes and ``GET /v1/tiers``."""
    config = gateway.config

    def admin(request: Request) -> None:
        expected = gateway.accounts.admin_key
        given = bearer(request) or ""
        if not expected:
            raise PermissionDenied("The admin API is off: set accounts.admin_key or "
                                   "GATEWAY_ADMIN_KEY")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthenticationFailed("Admin routes need the admin key as Bearer token")

    async def tiers(request: Request) -> Any:
        allowed = config.accounts.self_service_tiers
        return {"object": "list", "default": config.accounts.default_tier, "data": [
            {"id": name, **msgspec.to_builtins(tier), "self_service": name in allowed}
            for name, tier in config.tiers.items()]}

    async def admin_users(request: Request) -> Any:
        admin(request)
        query = request.query_params.get("q", "").strip().lower()
        return {"object": "list", "data": [
            {"id": u.id, "email": u.email, "name": u.name, "tier": u.tier, "status": u.status,
             "balance_usd": u.balance_usd, "created_at": u.created_at}
            for u in await gateway.accounts.store.list_users()
            if query in u.email.lower() or query in u.name.lower()]}

    async def admin_usage(request: Request) -> Any:
        admin(request)
        days = query_int(request, "days", "30", 366)
        return await usage_of_everyone(gateway.accounts.store, days, time.time())

    async def admin_health(request: Request) -> Any:
        admin(request)
        return {"object": "list", "data": deployment_health(gateway)}

    async def admin_update(request: Request) -> Any:
        admin(request)
        s = gateway.accounts
        email = request.path_params["email"].lower()
        action = request.path_params["action"]
        body = await read_body(request)
        if action == "tier":
            tier = body.get("tier")
            if config.tiers and tier not in config.tiers:
                raise BadRequest(f"Unknown tier {tier!r}", param="tier")
            ok = await s.store.set_user_field(email, "tier", tier)
        elif action in ("block", "unblock"):
            ok = await s.store.set_user_field(
                email, "status", "blocked" if action == "block" else "active")
            if ok and action == "block":
                s.on_event(email, "account.blocked", {"email": email})
        elif action == "topup":
            amount = body.get("amount_usd")
            if (not isinstance(amount, int | float) or isinstance(amount, bool)
                    or not 0 < amount <= 1e9):
                raise BadRequest("'amount_usd' must be a positive number up to 1e9",
                                 param="amount_usd")
            ok = await s.store.credit(email, float(amount), "topup", str(body.get("note") or ""))
            if ok:
                await s.cache.credited(email, float(amount))  # other instances: at once
        else:
            raise NotFound(f"Unknown admin action '{action}'")
        if not ok:
            raise NotFound(f"No user '{email}'")
        s.cache.forget(email)
        user = await s.store.find_user(email)
        assert user is not None
        return {"email": user.email, "tier": user.tier, "status": user.status,
                "balance_usd": user.balance_usd}

    async def maintenance(request: Request) -> Any:
        admin(request)
        cache = gateway.accounts.cache
        if request.method == "POST":
            body = await read_body(request)
            await set_maintenance(cache, bool(body.get("enabled")), str(body.get("message") or ""))
        return {"enabled": cache.maintenance is not None, "message": cache.maintenance or ""}

    return [
        ("/v1/tiers", tiers, ["GET"]),
        ("/v1/admin/users", admin_users, ["GET"]),
        ("/v1/admin/users/{email}/{action}", admin_update, ["POST"]),
        ("/v1/admin/maintenance", maintenance, ["GET", "POST"]),
        ("/v1/admin/usage", admin_usage, ["GET"]),
        ("/v1/admin/health", admin_health, ["GET"]),
    ]
