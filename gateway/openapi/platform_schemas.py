"""Request and answer bodies of the platform APIs (``gateway.platform``), for the OpenAPI
document: plugins, updates, credit prices, telemetry and webhooks."""

from __future__ import annotations

from typing import Any

import msgspec

# --- plugins, updates, prices ---------------------------------------------------------------


class Plugin(msgspec.Struct):
    """One entry of the operator's ``[[plugins]]`` catalog."""

    object: str
    name: str
    description: str = ""
    version: str = ""
    tags: list[str] = []
    repository: str | None = None
    homepage: str | None = None
    author: str | None = None
    min_version: str | None = None


class PluginList(msgspec.Struct):
    object: str
    data: list[Plugin]


class Release(msgspec.Struct):
    """The latest of the operator's ``[[releases]]`` by semantic-version order."""

    object: str
    version: str
    date: str = ""
    notes: str = ""
    url: str = ""


class UpdateCheck(msgspec.Struct):
    current: str
    latest: str | None
    update_available: bool
    url: str | None = None
    notes: str | None = None


class ModelCredits(msgspec.Struct):
    model: str
    credits: int
    free: bool = False


class TierAllowance(msgspec.Struct):
    credits_per_day: int
    requests_per_minute: int = 0
    max_keys: int = 0


class CreditPricing(msgspec.Struct):
    """Credits per call of every model and each tier's daily allowance (0: unlimited)."""

    object: str
    models: dict[str, int]
    data: list[ModelCredits]
    tiers: dict[str, TierAllowance]
    default_credits: int = 1
    unit: str = ""
    resets: str = ""


# --- telemetry ------------------------------------------------------------------------------


class TelemetryPing(msgspec.Struct):
    instance_id: str
    version: str | None = None
    os: str | None = None


class TelemetryEvent(msgspec.Struct):
    instance_id: str
    name: str
    properties: dict[str, Any] | None = None
    version: str | None = None
    os: str | None = None


class TelemetryBatch(msgspec.Struct):
    events: list[TelemetryEvent]


class TelemetryReceipt(msgspec.Struct):
    object: str
    accepted: int


class TelemetryStats(msgspec.Struct):
    object: str
    instances: int
    events: int
    pings: int
    by_name: dict[str, int]
    by_version: dict[str, int]
    by_day: dict[str, int]
    days: int = 30
    since: float = 0.0


# --- webhooks -------------------------------------------------------------------------------


class WebhookEndpointRequest(msgspec.Struct):
    url: str
    name: str | None = None
    event_types: list[str] | None = None
    balance_low_usd: float | None = None


class WebhookEndpointUpdate(msgspec.Struct):
    url: str | None = None
    name: str | None = None
    event_types: list[str] | None = None
    balance_low_usd: float | None = None
    disabled: bool | None = None


class WebhookEndpoint(msgspec.Struct):
    """An endpoint; ``signing_secret`` only in the answers of create and rotate_secret."""

    id: str
    object: str
    name: str
    url: str
    event_types: list[str]
    created_at: int
    status: str = "enabled"
    disabled_reason: str | None = None
    signing_secret_hint: str = ""
    signing_secret: str | None = None
    balance_low_usd: float | None = None


class WebhookEndpointList(msgspec.Struct):
    object: str
    data: list[WebhookEndpoint]


class WebhookEndpointDeleted(msgspec.Struct):
    id: str
    object: str
    deleted: bool


class WebhookTestRequest(msgspec.Struct):
    event_type: str | None = None


class WebhookTest(msgspec.Struct):
    object: str
    success: bool
    webhook_endpoint_id: str
    event_type: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: float = 0.0


class WebhookAttempt(msgspec.Struct):
    object: str
    delivery_id: str
    created_at: float
    success: bool
    event_type: str = ""
    status_code: int | None = None
    duration_ms: float = 0.0
    error: str | None = None
    delivery_status: str = ""
    attempts: int = 1
    next_attempt_at: float | None = None


class WebhookAttemptList(msgspec.Struct):
    object: str
    data: list[WebhookAttempt]


class WebhookEventType(msgspec.Struct):
    type: str
    description: str
    reserved: bool = False


class WebhookEventTypeList(msgspec.Struct):
    object: str
    data: list[WebhookEventType]
