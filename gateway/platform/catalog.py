"""What the operator declares in the config, served as is: the plugin catalog
(``[[plugins]]``), the release feed (``[[releases]]``) and the credit price map (each model's
``credits`` and each tier's ``credits_per_day``)."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.config import GatewayConfig, PluginConfig, ReleaseConfig
from gateway.errors import BadRequest, NotFound
from gateway.semver import parse_version
from routers.catalog import Catalog


def plugin_entry(plugin: PluginConfig) -> dict[str, Any]:
    entry: dict[str, Any] = {"object": "plugin", **msgspec.to_builtins(plugin)}
    entry.setdefault("tags", [])
    return entry


def find_plugins(
    plugins: list[PluginConfig], tag: str = "", query: str = ""
) -> list[dict[str, Any]]:
    """Plugins carrying ``tag`` (exactly, case-insensitively) whose name or description holds
    ``query`` (case-insensitively); an empty filter matches all."""
    tag, query = tag.strip().lower(), query.strip().lower()
    return [
        plugin_entry(p) for p in plugins
        if (not tag or tag in (t.lower() for t in p.tags))
        and (not query or query in p.name.lower() or query in p.description.lower())
    ]


def get_plugin(plugins: list[PluginConfig], name: str) -> dict[str, Any]:
    for plugin in plugins:
        if plugin.name == name:
            return plugin_entry(plugin)
    raise NotFound(f"No plugin named '{name}': GET /v1/plugins lists them")


def latest_release(releases: list[ReleaseConfig]) -> ReleaseConfig | None:
    """The highest version by semantic-version order (0.10.0 > 0.9.0), not the last listed."""
    return max(releases, key=lambda r: parse_version(r.version) or (0, 0, 0, 0, ()),
               default=None)


def release_entry(release: ReleaseConfig) -> dict[str, Any]:
    return {"object": "release", "version": release.version, "date": release.date,
            "notes": release.notes, "url": release.url}


def latest(releases: list[ReleaseConfig]) -> dict[str, Any]:
    release = latest_release(releases)
    if release is None:
        raise NotFound("No releases are published here")
    return release_entry(release)


def check_update(releases: list[ReleaseConfig], current: str) -> dict[str, Any]:
    """``{current, latest, update_available, url, notes}`` for a client at ``current``."""
    mine = parse_version(current)
    if mine is None:
        raise BadRequest(
            f"'current' must be a semantic version like 1.2.3, not {current[:64]!r}",
            param="current",
        )
    release = latest_release(releases)
    newest = parse_version(release.version) if release is not None else None
    available = release is not None and newest is not None and newest > mine
    return {
        "current": current,
        "latest": release.version if release is not None else None,
        "update_available": available,
        "url": release.url if release is not None else None,
        "notes": release.notes if release is not None else None,
    }


def credit_pricing(config: GatewayConfig, catalog: Catalog) -> dict[str, Any]:
    """CLEX's machine-readable map: credits per call of every model, daily allowance per tier."""
    models = {model.id: model.credits for model in catalog}
    return {
        "object": "credit_pricing",
        "unit": "credits per call",
        "default_credits": 1,
        "models": models,
        "data": [{"model": model.id, "credits": model.credits, "free": model.free}
                 for model in catalog],
        "tiers": {
            name: {"credits_per_day": tier.credits_per_day,
                   "requests_per_minute": tier.requests_per_minute,
                   "max_keys": tier.max_keys}
            for name, tier in config.tiers.items()
        },
        "resets": "00:00 UTC",
    }
