"""The ``Operation`` of every platform route (``gateway.platform.routes``)."""

from __future__ import annotations

from gateway.openapi import platform_schemas as p
from gateway.openapi.operation import Operation, Param

_STR = {"type": "string"}
_TELEMETRY_ERRORS = (400, 404, 413, 429, 503)

CATALOG = (
    Operation("GET", "/v1/plugins", "The plugin catalog", "platform", {200: p.PluginList},
              auth="none", errors=(),
              query=(Param("tag", _STR, "Only plugins with this tag"),
                     Param("q", _STR, "Only plugins whose name or description has it"))),
    Operation("GET", "/v1/plugins/{name}", "One plugin", "platform", {200: p.Plugin},
              auth="none", errors=(404,)),
    Operation("GET", "/v1/updates", "The latest release (semantic-version order)", "platform",
              {200: p.Release}, auth="none", errors=(404,)),
    Operation("GET", "/v1/updates/check", "Whether a newer release than `current` exists",
              "platform", {200: p.UpdateCheck}, auth="none", errors=(400,),
              query=(Param("current", _STR, "The client's version, like 1.2.3", True),)),
    Operation("GET", "/api/credits/pricing", "Credits per call of every model, per-tier allowance",
              "platform", {200: p.CreditPricing}, auth="none", errors=()),
)

TELEMETRY = (
    Operation("POST", "/v1/telemetry/ping", "An install's heartbeat (anonymous)", "telemetry",
              {200: p.TelemetryReceipt}, body=p.TelemetryPing, auth="none",
              errors=_TELEMETRY_ERRORS,
              example={"instance_id": "inst-1", "version": "0.10.0", "os": "linux"}),
    Operation("POST", "/v1/telemetry/event", "One telemetry event (anonymous)", "telemetry",
              {200: p.TelemetryReceipt}, body=p.TelemetryEvent, auth="none",
              errors=_TELEMETRY_ERRORS,
              example={"instance_id": "inst-1", "name": "session.start", "properties": {}}),
    Operation("POST", "/v1/telemetry/batch", "Up to 1,000 telemetry events (anonymous)",
              "telemetry", {200: p.TelemetryReceipt}, body=p.TelemetryBatch, auth="none",
              errors=_TELEMETRY_ERRORS),
    Operation("GET", "/v1/telemetry/stats", "Telemetry counts over a window", "telemetry",
              {200: p.TelemetryStats}, errors=(400, 401, 403, 404, 503),
              query=(Param("days", {"type": "integer", "minimum": 1, "maximum": 366},
                           "How many days, today included (default 30)"),)),
)

_HOOK_ERRORS = (400, 401, 403, 404, 503)


def _webhooks(prefix: str) -> tuple[Operation, ...]:
    one = prefix + "/{endpoint_id}"
    same = " (the same resource as /v1/webhook_endpoints)" if prefix == "/v1/webhooks" else ""
    return (
        Operation("GET", prefix, f"Your webhook endpoints{same}", "webhooks",
                  {200: p.WebhookEndpointList}, errors=_HOOK_ERRORS),
        Operation("POST", prefix, "Create a webhook endpoint; the secret is shown once",
                  "webhooks", {200: p.WebhookEndpoint}, body=p.WebhookEndpointRequest,
                  errors=_HOOK_ERRORS),
        Operation("GET", one, "One of your webhook endpoints", "webhooks",
                  {200: p.WebhookEndpoint}, errors=_HOOK_ERRORS),
        Operation("POST", one, "Update a webhook endpoint (url, name, event_types, disabled)",
                  "webhooks", {200: p.WebhookEndpoint}, body=p.WebhookEndpointUpdate,
                  errors=_HOOK_ERRORS, body_required=False),
        Operation("DELETE", one, "Delete a webhook endpoint", "webhooks",
                  {200: p.WebhookEndpointDeleted}, errors=_HOOK_ERRORS),
        Operation("POST", one + "/rotate_secret", "A new signing secret (shown once)",
                  "webhooks", {200: p.WebhookEndpoint}, errors=_HOOK_ERRORS,
                  body_required=False),
        Operation("POST", one + "/test", "Deliver a sample event of a type now", "webhooks",
                  {200: p.WebhookTest}, body=p.WebhookTestRequest, errors=_HOOK_ERRORS,
                  body_required=False),
        Operation("GET", one + "/deliveries", "Delivery attempts, newest first", "webhooks",
                  {200: p.WebhookAttemptList}, errors=_HOOK_ERRORS,
                  query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 500},
                               "How many (default 50)"),)),
    )


EVENT_TYPES = Operation(
    "GET", "/v1/webhooks/event_types", "The event types an endpoint may subscribe to",
    "webhooks", {200: p.WebhookEventTypeList}, auth="none", errors=())

PLATFORM: tuple[Operation, ...] = (
    *CATALOG, *TELEMETRY, EVENT_TYPES, *_webhooks("/v1/webhooks"),
    *_webhooks("/v1/webhook_endpoints")
)
