"""HTTP API of accounts: auth, API keys, provider keys (BYOK), usage, billing and admin.

A user is whoever the Bearer token names (an API key or a session token from login); every
query is filtered by that user, so nobody can list, revoke or read another user's keys or
usage. Keys with the ``inference`` permission reach only the model endpoints, ``/v1/auth/me``
and their own usage; keys, provider keys and billing need ``manage`` (or a session). A blocked
account can only log in and read ``/v1/auth/me``. Admin routes take the admin key.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from gateway.accounts.admin_routes import admin_routes
from gateway.accounts.auth_routes import auth_routes
from gateway.accounts.billing import invoices, month_start, parse_when, usage_daily, usage_summary
from gateway.accounts.http import (
    GatewayView,
    bounded_int,
    caller,
    guard,
    json_response,
    query_int,
    read_body,
)
from gateway.accounts.keys import INFERENCE, create_key, parse_permissions, permission_list
from gateway.errors import BadRequest, NotFound, PermissionDenied
from gateway.storage import KeyPolicy, KeyRecord


def key_entry(record: KeyRecord, policy: KeyPolicy) -> dict[str, Any]:
    return {
        "id": record.id, "object": "api_key", "prefix": record.prefix, "name": record.name,
        "created_at": record.created_at, "last_used_at": record.last_used_at,
        "revoked": record.revoked_at is not None,
        "permissions": permission_list(record.permissions),
        "requests_per_minute": policy.requests_per_minute or None,
        "requests_per_day": policy.requests_per_day or None,
        "allowed_models": list(policy.allowed_models) or None,
    }


def account_routes(gateway: GatewayView) -> list[Route]:
    """The routes, to append to the app's."""

    async def list_keys(request: Request) -> Any:
        s = gateway.accounts
        who = await caller(s, request, manage=True)
        if not who.user:
            raise PermissionDenied("This key belongs to no user, so it has no key list")
        records = [k for k in await s.keys_store.list_keys(who.user) if k.revoked_at is None]
        policies = await s.store.key_policies([k.id for k in records])
        return {"object": "list",
                "data": [key_entry(k, policies.get(k.id, KeyPolicy())) for k in records]}

    async def make_key(request: Request) -> Any:
        s = gateway.accounts
        who = await caller(s, request, manage=True)
        if not who.user:
            raise PermissionDenied("This key belongs to no user; log in to create keys")
        body = await read_body(request)
        permissions = parse_permissions(body.get("permissions") or INFERENCE)
        state = await s.cache.user(who)
        tier_name = state.tier if state.registered else who.tier
        tier = s.cache.tier(tier_name)
        active = [k for k in await s.keys_store.list_keys(who.user) if k.revoked_at is None]
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
        policy = KeyPolicy(bounded_int(body, "requests_per_minute"),
                           bounded_int(body, "requests_per_day"), tuple(models))
        key, record = await create_key(
            s.keys_store, gateway.config.keys.prefix, name=str(body.get("name") or "")[:200],
            user=who.user, tier=tier_name, permissions=permissions)
        if policy != KeyPolicy():
            await s.store.set_key_policy(record.id, policy)
        s.on_event(who.user, "key.created", {"key_id": record.id, "name": record.name,
                                             "permissions": permission_list(permissions)})
        return json_response({**key_entry(record, policy), "key": key}, 201)

    async def delete_key(request: Request) -> Any:
        s = gateway.accounts
        who = await caller(s, request, manage=True)
        key_id = request.path_params["key_id"]
        record = await s.keys_store.revoke_key(key_id, user=who.user) if who.user else None
        if record is None:
            raise NotFound(f"No active key '{key_id}' among yours: GET /v1/keys lists them")
        await s.revoked(record)  # here at once, other instances via Redis
        s.on_event(who.user, "key.revoked", {"key_id": record.id, "name": record.name})
        return {"id": record.id, "object": "api_key", "deleted": True}

    # --- bring your own key ---

    async def list_provider_keys(request: Request) -> Any:
        s = gateway.accounts
        who = await caller(s, request, manage=True)
        rows = await s.store.provider_keys(who.user)
        return {"object": "list", "data": [
            {"provider": p, "hint": hint, "created_at": created} for p, _, hint, created in rows],
            "enabled": s.box.enabled,  # what the pages may offer
            "providers": sorted(p for p in gateway.adapters if p != "mock")}

    async def put_provider_key(request: Request) -> Any:
        s = gateway.accounts
        who = await caller(s, request, manage=True)
        if not s.box.enabled:
            raise PermissionDenied("Bring-your-own-key is off: the operator has set no "
                                   "accounts.secret (GATEWAY_SECRET)")
        if not who.user:
            raise PermissionDenied("This key belongs to no user")
        provider = request.path_params["provider"]
        if provider not in gateway.adapters or provider == "mock":
            raise BadRequest(f"Unknown provider '{provider}'", param="provider")
        body = await read_body(request)
        secret = body.get("api_key")
        if not isinstance(secret, str) or len(secret) < 8:
            raise BadRequest("'api_key' must be the provider key", param="api_key")
        await s.store.set_provider_key(who.user, provider, s.box.seal(secret), "…" + secret[-4:])
        s.cache.forget(who.user)
        return {"provider": provider, "hint": "…" + secret[-4:]}

    async def delete_provider_key(request: Request) -> Any:
        s = gateway.accounts
        who = await caller(s, request, manage=True)
        provider = request.path_params["provider"]
        if not await s.store.delete_provider_key(who.user, provider):
            raise NotFound(f"No key stored for provider '{provider}'")
        s.cache.forget(who.user)
        return {"provider": provider, "deleted": True}

    # --- usage (the account's, or an inference key's own) and billing ---

    async def usage(request: Request) -> Any:
        who = await caller(gateway.accounts, request)
        now = time.time()
        try:
            since = parse_when(request.query_params.get("start"), month_start(now))
            until = parse_when(request.query_params.get("end"), now + 1)
        except ValueError as exc:
            raise BadRequest("start/end must be YYYY-MM-DD, ISO 8601 or Unix seconds") from exc
        owner, key_id = who.usage_owner
        return await usage_summary(gateway.accounts.store, owner, since, until, key_id)

    async def daily(request: Request) -> Any:
        who = await caller(gateway.accounts, request)
        days = query_int(request, "days", "30", 366)
        owner, key_id = who.usage_owner
        return await usage_daily(gateway.accounts.store, owner, days, time.time(), key_id)

    async def recent(request: Request) -> Any:
        who = await caller(gateway.accounts, request)
        limit = query_int(request, "limit", "50", 500)
        owner, key_id = who.usage_owner
        store = gateway.accounts.store
        rows = await store.recent_usage(owner, limit, key_id) if owner or key_id else []
        return {"object": "list", "data": rows}

    async def usage_request(request: Request) -> Any:
        who = await caller(gateway.accounts, request)
        owner, key_id = who.usage_owner
        row = await gateway.accounts.store.usage_row(
            owner, request.path_params["request_id"], key_id)
        if row is None:
            raise NotFound("No such request among yours (rows are written within a second)")
        return row

    async def list_invoices(request: Request) -> Any:
        who = await caller(gateway.accounts, request, manage=True)
        return await invoices(gateway.accounts.store, who.user)

    async def checkout(request: Request) -> Any:
        s = gateway.accounts
        who = await caller(s, request, manage=True)
        body = await read_body(request)
        tier = body.get("tier")
        tiers = gateway.config.tiers
        allowed = gateway.config.accounts.self_service_tiers
        if not isinstance(tier, str) or tier not in tiers:
            raise BadRequest(f"Unknown tier {tier!r}; tiers: {', '.join(sorted(tiers))}",
                             param="tier")
        if tier not in allowed:
            raise PermissionDenied(
                f"Changing to the {tier} tier is not self-service on this gateway"
                + (f" (self-service tiers: {', '.join(allowed)})" if allowed else "")
                + "; ask the operator", code="self_service_disabled")
        if not who.user or not await s.store.set_user_field(who.user, "tier", tier):
            raise PermissionDenied("Only registered users can change tier; sign up first")
        s.cache.forget(who.user)
        return {"object": "checkout", "status": "completed", "tier": tier,
                "price_usd": tiers[tier].price_usd}

    table = [
        *auth_routes(gateway),
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
        *admin_routes(gateway),
    ]
    return [Route(path, guard(handler), methods=methods) for path, handler, methods in table]
