"""Request and answer bodies of the account API (``gateway.accounts.routes``), for the OpenAPI
document. Requests list what the handlers read; answers what they build."""

from __future__ import annotations

from typing import Any

import msgspec

# --- auth -----------------------------------------------------------------------------------


class SignupRequest(msgspec.Struct):
    email: str
    password: str
    name: str | None = None


class LoginRequest(msgspec.Struct):
    email: str
    password: str


class ForgotRequest(msgspec.Struct):
    email: str


class ResetRequest(msgspec.Struct):
    token: str
    password: str


class Session(msgspec.Struct):
    """A new account and its session token (usable as Bearer)."""

    id: str
    email: str
    tier: str
    token: str
    status: str = "active"


class PendingSignup(msgspec.Struct):
    """A signup that works once the link sent to its address is used (no token yet)."""

    id: str
    email: str
    tier: str
    status: str
    message: str


class VerifyRequest(msgspec.Struct):
    token: str


class Verified(msgspec.Struct):
    email: str
    status: str
    message: str


class SessionUser(msgspec.Struct):
    id: str
    email: str
    tier: str
    status: str = "active"


class Login(msgspec.Struct):
    token: str
    token_type: str
    expires_at: int
    user: SessionUser


class Profile(msgspec.Struct):
    """Who the Bearer token names: tier, its limits, today's use, the month's usage."""

    tier: str
    status: str
    balance_usd: float
    email: str | None = None
    id: str | None = None
    name: str | None = None
    prepaid: bool = False
    limits: dict[str, Any] = {}
    usage: dict[str, int | float] = {}
    period: dict[str, Any] = {}
    byok_providers: list[str] = []
    created_at: float | None = None


class Status(msgspec.Struct):
    status: str
    message: str | None = None
    revoked_keys: list[str] | None = None  # a password reset: the 'manage' keys it revoked


# --- API keys -------------------------------------------------------------------------------


class KeyRequest(msgspec.Struct):
    """Limits of this key on top of its tier's: 0 or absent means only the tier's."""

    name: str | None = None
    requests_per_minute: int | None = None
    requests_per_day: int | None = None
    allowed_models: list[str] | None = None
    # "inference" (default: model endpoints and this key's usage) or "manage" (also keys,
    # provider keys and billing).
    permissions: str | list[str] | None = None


class ApiKey(msgspec.Struct):
    id: str
    object: str
    prefix: str
    name: str = ""
    created_at: float | None = None
    last_used_at: float | None = None
    revoked: bool = False
    permissions: list[str] | None = None
    requests_per_minute: int | None = None
    requests_per_day: int | None = None
    allowed_models: list[str] | None = None


class NewApiKey(ApiKey):
    """A created key: ``key`` is the secret, shown only in this answer."""

    key: str = ""


class ApiKeyList(msgspec.Struct):
    object: str
    data: list[ApiKey]


class Deleted(msgspec.Struct):
    id: str
    object: str
    deleted: bool


# --- bring your own key ---------------------------------------------------------------------


class ProviderKeyRequest(msgspec.Struct):
    api_key: str


class ProviderKey(msgspec.Struct):
    provider: str
    hint: str | None = None
    created_at: float | None = None
    deleted: bool | None = None


class ProviderKeyList(msgspec.Struct):
    object: str
    data: list[ProviderKey]
    enabled: bool | None = None  # whether BYOK is on (accounts.secret set)
    providers: list[str] | None = None  # the providers that take a user's own key


# --- usage and billing ----------------------------------------------------------------------


class UsageTotals(msgspec.Struct):
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    total_tokens: int
    cost_usd: float


class UsageSummary(UsageTotals):
    object: str = "usage"
    start: str = ""
    end: str = ""
    estimated_requests: int = 0
    by_provider: dict[str, UsageTotals] = {}
    by_model: dict[str, UsageTotals] = {}


class UsageDay(UsageTotals):
    date: str = ""


class UsageDaily(msgspec.Struct):
    object: str
    data: list[UsageDay]


class RecentRequest(msgspec.Struct):
    """One of the caller's latest requests."""

    request_id: str
    created_at: float
    model_requested: str
    model_served: str
    provider: str
    status: int
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    operation: str = "chat"  # chat, responses, embeddings, rerank, moderation, images, video


class RecentRequestList(msgspec.Struct):
    object: str
    data: list[RecentRequest]


class UsageOfEveryone(UsageTotals):
    """Usage of every user over the last ``days`` UTC days."""

    object: str = "usage"
    start: str = ""
    days: int = 0
    by_user: dict[str, UsageTotals] = {}
    by_model: dict[str, UsageTotals] = {}
    daily: list[UsageDay] = []


class DeploymentHealth(msgspec.Struct):
    """One deployment (``provider:upstream``): benched or serving, load and latency."""

    deployment: str
    provider: str
    upstream: str
    models: list[str]
    benched: bool
    rate_limited: bool
    in_flight: int
    benched_until: float | None = None
    latency_s: float | None = None


class DeploymentHealthList(msgspec.Struct):
    object: str
    data: list[DeploymentHealth]


class Invoice(UsageTotals):
    id: str = ""
    period: str = ""
    topups_usd: float = 0.0


class InvoiceList(msgspec.Struct):
    object: str
    data: list[Invoice]


class CheckoutRequest(msgspec.Struct):
    tier: str


class Checkout(msgspec.Struct):
    object: str
    status: str
    tier: str
    price_usd: float | None = None


class Tier(msgspec.Struct):
    id: str
    self_service: bool = False
    description: str | None = None
    prepaid: bool = False
    max_keys: int | None = None
    requests_per_minute: int | None = None
    requests_per_day: int | None = None


class TierList(msgspec.Struct):
    object: str
    data: list[Tier]
    default: str | None = None


# --- admin ----------------------------------------------------------------------------------


class AdminUser(msgspec.Struct):
    email: str
    tier: str
    status: str
    balance_usd: float
    id: str | None = None
    name: str | None = None
    created_at: float | None = None


class AdminUserList(msgspec.Struct):
    object: str
    data: list[AdminUser]


class AdminAction(msgspec.Struct):
    """``tier`` for the tier action, ``amount_usd`` (and ``note``) for a top-up."""

    tier: str | None = None
    amount_usd: float | None = None
    note: str | None = None


class MaintenanceRequest(msgspec.Struct):
    enabled: bool
    message: str | None = None


class Maintenance(msgspec.Struct):
    enabled: bool
    message: str = ""
