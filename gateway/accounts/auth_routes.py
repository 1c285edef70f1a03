"""``/v1/auth/*``: signup, verification, login, the caller's own account, reset, logout."""

from __future__ import annotations

import time
from functools import partial as bind
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.accounts.billing import month_start, usage_summary
from gateway.accounts.http import (
    GatewayView,
    caller,
    client_address,
    json_response,
    read_body,
)
from gateway.errors import BadRequest, PermissionDenied

Table = list[tuple[str, Any, list[str]]]


def _client(gateway: GatewayView, request: Request) -> str:
    return client_address(request, gateway.config.server.trusted_proxies)


async def _signup(gateway: GatewayView, request: Request) -> Response:
    if not gateway.config.accounts.signup:
        raise PermissionDenied("Signup is switched off on this gateway; ask the operator")
    body = await read_body(request)
    s = gateway.accounts
    user = await s.accounts.signup(body.get("email"), body.get("password"),
                                   str(body.get("name") or ""), _client(gateway, request))
    answer = {"id": user.id, "email": user.email, "tier": user.tier, "status": user.status}
    if user.status == "pending":
        return json_response({**answer, "message": "Check your mailbox: the account "
                              "works once the link sent there is used"}, 202)
    token, _ = await s.sessions.open(user)
    return json_response({**answer, "token": token}, 201)


async def _verify(gateway: GatewayView, request: Request) -> Any:
    token = request.query_params.get("token") if request.method == "GET" else (
        await read_body(request)).get("token")
    user = await gateway.accounts.accounts.verify(token)
    return {"email": user.email, "status": user.status,
            "message": "Address confirmed: log in with your password"}


async def _login(gateway: GatewayView, request: Request) -> Any:
    body = await read_body(request)
    s = gateway.accounts
    user = await s.accounts.login(body.get("email"), body.get("password"),
                                  _client(gateway, request))
    token, _ = await s.sessions.open(user)
    ttl = gateway.config.accounts.session_ttl
    return {"token": token, "token_type": "bearer", "expires_at": int(time.time() + ttl),
            "user": {"id": user.id, "email": user.email, "tier": user.tier,
                     "status": user.status}}


async def _me(gateway: GatewayView, request: Request) -> Any:
    s = gateway.accounts
    who = await caller(s, request, allow_blocked=True)
    state = await s.cache.user(who)
    tier_name = state.tier if state.registered else who.tier
    tier = s.cache.tier(tier_name)
    record = await s.store.find_user(who.user) if who.user else None
    now = time.time()
    limiter = s.limiter
    day = limiter.day()
    user = who.user or who.key_id
    used = {
        "requests_today": await limiter.get(f"rpd:{day}:u:{user}"),
        "credits_today": await limiter.get(f"cpd:{day}:u:{user}"),
        "tokens_today": await limiter.get(f"tpd:{day}:u:{user}"),
        "tokens_this_month": await limiter.get(f"tpm:{limiter.month()}:u:{user}"),
    }
    owner, key_id = who.usage_owner
    period = await usage_summary(s.store, owner, month_start(now), now + 1, key_id)
    return {
        "id": record.id if record else None,
        "email": who.user,
        "name": record.name if record else "",
        "tier": tier_name,
        "status": "blocked" if state.blocked else "active",
        "balance_usd": round(await s.cache.current_balance(state), 10),
        "prepaid": tier.prepaid,
        "limits": msgspec.to_builtins(tier),
        "usage": used,
        "period": {k: period[k] for k in ("start", "end", "requests", "total_tokens",
                                          "cost_usd")},
        "byok_providers": sorted(state.byok),
        "created_at": record.created_at if record else None,
    }


async def _forgot(gateway: GatewayView, request: Request) -> Response:
    body = await read_body(request)
    await gateway.accounts.accounts.forgot(body.get("email"), _client(gateway, request))
    return json_response({"status": "sent", "message": "If the account exists, a reset "
                          "token was sent to its owner"}, 202)


async def _reset(gateway: GatewayView, request: Request) -> Any:
    body = await read_body(request)
    _, revoked = await gateway.accounts.accounts.reset(body.get("token"),
                                                       body.get("password"))
    message = "Password changed; log in again"
    if revoked:
        message += (f". {len(revoked)} API key(s) with the 'manage' permission were revoked:"
                    " create new ones")
    return {"status": "ok", "message": message, "revoked_keys": revoked}


async def _logout(gateway: GatewayView, request: Request) -> Any:
    s = gateway.accounts
    who = await caller(s, request, allow_blocked=True)
    if who.key_name != "session":
        raise BadRequest("Logout ends a session: call it with the session token from login")
    await s.sessions.close(who)
    return {"status": "ok"}


def auth_routes(gateway: GatewayView) -> Table:
    """(path, handler, methods) of the auth routes."""
    return [
        ("/v1/auth/signup", bind(_signup, gateway), ["POST"]),
        ("/v1/auth/verify", bind(_verify, gateway), ["GET", "POST"]),
        ("/v1/auth/login", bind(_login, gateway), ["POST"]),
        ("/v1/auth/me", bind(_me, gateway), ["GET"]),
        ("/v1/auth/forgot", bind(_forgot, gateway), ["POST"]),
        ("/v1/auth/reset", bind(_reset, gateway), ["POST"]),
        ("/v1/auth/logout", bind(_logout, gateway), ["POST"]),
    ]
