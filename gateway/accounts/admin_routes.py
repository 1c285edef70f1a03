"""``/v1/admin/*`` (the admin key as Bearer) and the public tier list."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from starlette.requests import Request

from gateway.accounts.auth_routes import Table
from gateway.accounts.http import GatewayView, bearer, read_body
from gateway.accounts.maintenance import set_maintenance
from gateway.errors import AuthenticationFailed, BadRequest, NotFound, PermissionDenied


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
        return {"object": "list", "data": [
            {"id": u.id, "email": u.email, "name": u.name, "tier": u.tier, "status": u.status,
             "balance_usd": u.balance_usd, "created_at": u.created_at}
            for u in await gateway.accounts.store.list_users()]}

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
    ]
