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

PLATFORM: tuple[Operation, ...] = (*CATALOG, *TELEMETRY)
