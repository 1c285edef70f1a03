"""HTTP API of accounts: auth, API keys, provider keys (BYOK), usage, billing and admin.

Every route answers JSON; errors use the OpenAI error shape of ``gateway.errors``. A user is
whoever the Bearer token names (an API key or a session token from login); every query is
filtered by that user, so nobody can list, revoke or read another user's keys or usage.
Admin routes take the admin key (``accounts.admin_key`` or ``GATEWAY_ADMIN_KEY``).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.auth import Principal, create_key, key_from_headers
from gateway.billing import (
    invoices,
    month_start,
    parse_when,
    usage_daily,
    usage_of_everyone,
    usage_summary,
)
from gateway.errors import (
    AuthenticationFailed,
    BadRequest,
    NotFound,
    PermissionDenied,
)
from gateway.storage import KeyPolicy
from gateway.wiring import AccountServices, Gateway

Handler = Callable[[Request], Awaitable[Response]]


def _json(content: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(content), status, media_type="application/json")


def _guard(handler: Callable[[Request], Awaitable[Any]]) -> Handler:
    """The handler's result as JSON; its errors go to the app's exception handlers
    (``gateway.app``: GatewayError in its shape, a storage outage as 503)."""

    async def endpoint(request: Request) -> Response:
        result = await handler(request)
        return result if isinstance(result, Response) else _json(result)

    return endpoint


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadRequest("The body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object")
    return body


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name, 0) or 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequest(f"'{name}' must be a non-negative integer", param=name)
    return value


def _bounded(request: Request, name: str, default: str, most: int) -> int:
    raw = request.query_params.get(name, default)
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise BadRequest(f"'{name}' must be between 1 and {most}", param=name)
    return int(raw)


def deployment_health(gateway: Gateway) -> list[dict[str, Any]]:
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


def account_routes(gateway: Gateway) -> list[Route]:
    """The routes, to append to the app's."""

    async def principal(request: Request) -> Principal:
        headers = request.headers
        key = key_from_headers(
            headers.get("authorization", "").encode("latin-1") or None,
            headers.get("x-api-key", "").encode("latin-1") or None,
        )
        return await gateway.keys.authenticate(key)

    def services() -> AccountServices:
        return gateway.accounts

    # --- auth ---

    async def signup(request: Request) -> Response:
        if not gateway.config.accounts.signup:
            raise PermissionDenied("Signup is switched off on this gateway; ask the operator")
        body = await _body(request)
        s = services()
        user = await s.accounts.signup(body.get("email"), body.get("password"),
                                       str(body.get("name") or ""))
        token, _ = await s.sessions.open(user)
        return _json({"id": user.id, "email": user.email, "tier": user.tier, "token": token}, 201)

    async def login(request: Request) -> Any:
        body = await _body(request)
        s = services()
        user = await s.accounts.login(body.get("email"), body.get("password"))
        token, _ = await s.sessions.open(user)
        ttl = gateway.config.accounts.session_ttl
        return {"token": token, "token_type": "bearer", "expires_at": int(time.time() + ttl),
                "user": {"id": user.id, "email": user.email, "tier": user.tier}}

    async def me(request: Request) -> Any:
        who = await principal(request)
        s = services()
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
        period = await usage_summary(s.store, who.user, month_start(now), now + 1)
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

    async def forgot(request: Request) -> Response:
        body = await _body(request)
        await services().accounts.forgot(body.get("email"))
        return _json({"status": "sent", "message": "If the account exists, a reset token "
                      "was sent to its owner"}, 202)

    async def reset(request: Request) -> Any:
        body = await _body(request)
        email = await services().accounts.reset(body.get("token"), body.get("password"))
        services().cache.forget(email)
        return {"status": "ok", "message": "Password changed; log in again"}

    async def logout(request: Request) -> Any:
        who = await principal(request)
        if who.key_name != "session":
            raise BadRequest("Logout ends a session: call it with the session token from login")
        await services().sessions.close(who)
        return {"status": "ok"}

    # --- API keys ---

    def key_entry(record: Any, policy: KeyPolicy) -> dict[str, Any]:
        return {
            "id": record.id, "object": "api_key", "prefix": record.prefix, "name": record.name,
            "created_at": record.created_at, "last_used_at": record.last_used_at,
            "revoked": record.revoked_at is not None,
            "requests_per_minute": policy.requests_per_minute or None,
            "requests_per_day": policy.requests_per_day or None,
            "allowed_models": list(policy.allowed_models) or None,
        }

    async def list_keys(request: Request) -> Any:
        who = await principal(request)
        if not who.user:
            raise PermissionDenied("This key belongs to no user, so it has no key list")
        records = [k for k in await gateway.store.list_keys(who.user) if k.revoked_at is None]
        policies = await services().store.key_policies([k.id for k in records])
        return {"object": "list",
                "data": [key_entry(k, policies.get(k.id, KeyPolicy())) for k in records]}

    async def make_key(request: Request) -> Response:
        who = await principal(request)
        if not who.user:
            raise PermissionDenied("This key belongs to no user; log in to create keys")
        body = await _body(request)
        s = services()
        state = await s.cache.user(who)
        tier_name = state.tier if state.registered else who.tier
        tier = s.cache.tier(tier_name)
        active = [k for k in await gateway.store.list_keys(who.user) if k.revoked_at is None]
        if tier.max_keys and len(active) >= tier.max_keys:
            raise PermissionDenied(
                f"Your {tier_name} tier allows {tier.max_keys} API keys; revoke one first",
                code="key_limit_reached",
            )
        models = body.get("allowed_models") or []
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise BadRequest("'allowed_models' must be a list of model ids", param="allowed_models")
        for name in models:
            if gateway.catalog.get(name) is None:
                raise BadRequest(f"Unknown model '{name}' in allowed_models",
                                 param="allowed_models")
        policy = KeyPolicy(_int(body, "requests_per_minute"), _int(body, "requests_per_day"),
                           tuple(models))
        key, record = await create_key(gateway.store, gateway.config.keys.prefix,
                                       name=str(body.get("name") or "")[:200], user=who.user,
                                       tier=tier_name)
        if policy != KeyPolicy():
            await s.store.set_key_policy(record.id, policy)
        return _json({**key_entry(record, policy), "key": key}, 201)

    async def delete_key(request: Request) -> Any:
        who = await principal(request)
        key_id = request.path_params["key_id"]
        record = await gateway.store.revoke_key(key_id, user=who.user) if who.user else None
        if record is None:
            raise NotFound(f"No active key '{key_id}' among yours: GET /v1/keys lists them")
        await gateway.revoked(record.key_hash)  # here at once, other instances via Redis
        services().cache.forget_policy(record.id)
        return {"id": record.id, "object": "api_key", "deleted": True}

    # --- bring your own key ---

    async def list_provider_keys(request: Request) -> Any:
        who = await principal(request)
        rows = await services().store.provider_keys(who.user)
        return {"object": "list", "data": [
            {"provider": p, "hint": hint, "created_at": created} for p, _, hint, created in rows],
            "enabled": services().box.enabled,  # what the pages may offer
            "providers": sorted(p for p in gateway.adapters if p != "mock")}

    async def put_provider_key(request: Request) -> Any:
        who = await principal(request)
        s = services()
        if not s.box.enabled:
            raise PermissionDenied("Bring-your-own-key is off: the operator has set no "
                                   "accounts.secret (GATEWAY_SECRET)")
        if not who.user:
            raise PermissionDenied("This key belongs to no user")
        provider = request.path_params["provider"]
        if provider not in gateway.adapters or provider == "mock":
            raise BadRequest(f"Unknown provider '{provider}'", param="provider")
        body = await _body(request)
        secret = body.get("api_key")
        if not isinstance(secret, str) or len(secret) < 8:
            raise BadRequest("'api_key' must be the provider key", param="api_key")
        await s.store.set_provider_key(who.user, provider, s.box.seal(secret), "…" + secret[-4:])
        s.cache.forget(who.user)
        return {"provider": provider, "hint": "…" + secret[-4:]}

    async def delete_provider_key(request: Request) -> Any:
        who = await principal(request)
        provider = request.path_params["provider"]
        if not await services().store.delete_provider_key(who.user, provider):
            raise NotFound(f"No key stored for provider '{provider}'")
        services().cache.forget(who.user)
        return {"provider": provider, "deleted": True}

    # --- usage and billing ---

    async def usage(request: Request) -> Any:
        who = await principal(request)
        now = time.time()
        try:
            since = parse_when(request.query_params.get("start"), month_start(now))
            until = parse_when(request.query_params.get("end"), now + 1)
        except ValueError as exc:
            raise BadRequest("start/end must be YYYY-MM-DD, ISO 8601 or Unix seconds") from exc
        return await usage_summary(services().store, who.user, since, until)

    async def daily(request: Request) -> Any:
        who = await principal(request)
        days = _bounded(request, "days", "30", 366)
        return await usage_daily(services().store, who.user, days, time.time())

    async def recent(request: Request) -> Any:
        who = await principal(request)
        limit = _bounded(request, "limit", "50", 500)
        rows = await services().store.recent_usage(who.user, limit) if who.user else []
        return {"object": "list", "data": rows}

    async def usage_request(request: Request) -> Any:
        who = await principal(request)
        row = await services().store.usage_row(who.user, request.path_params["request_id"])
        if row is None:
            raise NotFound("No such request among yours (rows are written within a second)")
        return row

    async def list_invoices(request: Request) -> Any:
        who = await principal(request)
        return await invoices(services().store, who.user)

    async def checkout(request: Request) -> Any:
        who = await principal(request)
        body = await _body(request)
        tier = body.get("tier")
        allowed = gateway.config.accounts.self_service_tiers
        if not isinstance(tier, str) or tier not in gateway.config.tiers:
            raise BadRequest(f"Unknown tier {tier!r}; tiers: "
                             f"{', '.join(sorted(gateway.config.tiers))}", param="tier")
        if tier not in allowed:
            raise PermissionDenied(
                f"Changing to the {tier} tier is not self-service on this gateway"
                + (f" (self-service tiers: {', '.join(allowed)})" if allowed else "")
                + "; ask the operator", code="self_service_disabled")
        s = services()
        if not await s.store.set_user_field(who.user, "tier", tier):
            raise PermissionDenied("Only registered users can change tier; sign up first")
        s.cache.forget(who.user)
        return {"object": "checkout", "status": "completed", "tier": tier,
                "price_usd": gateway.config.tiers[tier].price_usd}

    async def tiers(request: Request) -> Any:
        allowed = gateway.config.accounts.self_service_tiers
        return {"object": "list", "default": gateway.config.accounts.default_tier, "data": [
            {"id": name, **msgspec.to_builtins(tier), "self_service": name in allowed}
            for name, tier in gateway.config.tiers.items()]}

    # --- admin ---

    def admin(request: Request) -> None:
        expected = services().admin_key
        given = key_from_headers(
            request.headers.get("authorization", "").encode("latin-1") or None,
            request.headers.get("x-api-key", "").encode("latin-1") or None,
        ) or ""
        if not expected:
            raise PermissionDenied("The admin API is off: set accounts.admin_key or "
                                   "GATEWAY_ADMIN_KEY")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthenticationFailed("Admin routes need the admin key as Bearer token")

    async def admin_users(request: Request) -> Any:
        admin(request)
        s = services()
        query = request.query_params.get("q", "").strip().lower()
        return {"object": "list", "data": [
            {"id": u.id, "email": u.email, "name": u.name, "tier": u.tier, "status": u.status,
             "balance_usd": u.balance_usd, "created_at": u.created_at}
            for u in await s.store.list_users()
            if query in u.email.lower() or query in u.name.lower()]}

    async def admin_usage(request: Request) -> Any:
        admin(request)
        days = _bounded(request, "days", "30", 366)
        return await usage_of_everyone(services().store, days, time.time())

    async def admin_health(request: Request) -> Any:
        admin(request)
        return {"object": "list", "data": deployment_health(gateway)}

    async def admin_update(request: Request) -> Any:
        admin(request)
        s = services()
        email = request.path_params["email"].lower()
        action = request.path_params["action"]
        body = await _body(request)
        if action == "tier":
            tier = body.get("tier")
            if gateway.config.tiers and tier not in gateway.config.tiers:
                raise BadRequest(f"Unknown tier {tier!r}", param="tier")
            ok = await s.store.set_user_field(email, "tier", tier)
        elif action in ("block", "unblock"):
            ok = await s.store.set_user_field(
                email, "status", "blocked" if action == "block" else "active")
        elif action == "topup":
            amount = body.get("amount_usd")
            if not isinstance(amount, int | float) or isinstance(amount, bool) or amount <= 0:
                raise BadRequest("'amount_usd' must be a positive number", param="amount_usd")
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
        s = services()
        if request.method == "POST":
            from gateway.accounts import set_maintenance

            body = await _body(request)
            message = str(body.get("message") or "")
            await set_maintenance(s.cache, bool(body.get("enabled")), message)
        return {"enabled": s.cache.maintenance is not None, "message": s.cache.maintenance or ""}

    table: list[tuple[str, Callable[[Request], Awaitable[Any]], list[str]]] = [
        ("/v1/auth/signup", signup, ["POST"]),
        ("/v1/auth/login", login, ["POST"]),
        ("/v1/auth/me", me, ["GET"]),
        ("/v1/auth/forgot", forgot, ["POST"]),
        ("/v1/auth/reset", reset, ["POST"]),
        ("/v1/auth/logout", logout, ["POST"]),
        ("/v1/keys", list_keys, ["GET"]),
        ("/v1/keys", make_key, ["POST"]),
        ("/v1/keys/{key_id}", delete_key, ["DELETE"]),
        ("/v1/provider-keys", list_provider_keys, ["GET"]),
        ("/v1/provider-keys/{provider}", put_provider_key, ["PUT"]),
        ("/v1/provider-keys/{provider}", delete_provider_key, ["DELETE"]),
        ("/v1/usage", usage, ["GET"]),
        ("/v1/usage/daily", daily, ["GET"]),
        ("/v1/usage/requests", recent, ["GET"]),
        ("/v1/usage/requests/{request_id}", usage_request, ["GET"]),
        ("/v1/billing/invoices", list_invoices, ["GET"]),
        ("/v1/billing/checkout", checkout, ["POST"]),
        ("/v1/tiers", tiers, ["GET"]),
        ("/v1/admin/users", admin_users, ["GET"]),
        ("/v1/admin/users/{email}/{action}", admin_update, ["POST"]),
        ("/v1/admin/maintenance", maintenance, ["GET", "POST"]),
        ("/v1/admin/usage", admin_usage, ["GET"]),
        ("/v1/admin/health", admin_health, ["GET"]),
    ]
    return [Route(path, _guard(handler), methods=methods) for path, handler, methods in table]
