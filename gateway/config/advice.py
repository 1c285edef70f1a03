"""What ``check-config`` and ``serve`` tell the operator about a configuration that loads:
warnings about setups that work but are probably not wanted, and notes."""

from __future__ import annotations

from gateway.config.checks import model_names, unpriced_models
from gateway.config.schema import GatewayConfig


def config_warnings(config: GatewayConfig, workers: int | None = None) -> list[str]:
    """Things that work but are probably not what the operator wants.

    ``workers`` is the number ``serve --workers`` was given, when it overrides the file.
    """
    warnings = _scaleout_warnings(config, workers or config.server.workers)
    warnings += _signup_warnings(config)
    return warnings


def _scaleout_warnings(config: GatewayConfig, workers: int) -> list[str]:
    warnings = []
    if workers > 1 and config.limits.storage.startswith("memory"):
        warnings.append(
            f"{workers} workers (server.workers > 1) with limits.storage = memory://: each "
            "worker counts limits on its own; use redis:// to share them"
        )
    if workers > 1 and config.storage.url.startswith("sqlite:"):
        warnings.append(
            f"{workers} workers (server.workers > 1) with SQLite: workers share the file but "
            "write one at a time; use postgresql:// for several workers or instances"
        )
    if workers > 1 and config.cache.mode != "off" and config.cache.backend == "memory":
        warnings.append(
            f"{workers} workers (server.workers > 1) with cache.backend = memory: each worker "
            'caches on its own; use "redis" to share answers'
        )
    return warnings


def _signup_warnings(config: GatewayConfig) -> list[str]:
    """With signup on, strangers get the default tier: say when it is unlimited, or when it
    may call models that have no price."""
    if not config.accounts.signup:
        return []
    name = config.accounts.default_tier
    tier = config.tiers[name]
    warnings = []
    if tier.unlimited:
        warnings.append(
            f"accounts.signup is on and the default tier {name!r} has no limits: anyone who "
            f"can sign up spends your providers' keys without bound; set limits in [tiers.{name}]"
        )
    unpriced = unpriced_models(config)
    if tier.models:  # only the names listed, which may be unlisted "<provider>/<model>"s
        listed = model_names(config)
        unpriced = [m for m in unpriced if m in tier.models or (m.endswith("/*") and any(
            x.startswith(m[:-1]) and x not in listed for x in tier.models))]
    if unpriced:
        warnings.append(
            f"accounts.signup is on and the default tier {name!r} can reach unpriced models "
            f"({', '.join(unpriced)}); they are refused on your keys until priced: set "
            "input_price/output_price, or providers.<name>.default_input_price/"
            f"default_output_price, or list models in [tiers.{name}] models"
        )
    return warnings


def unpriced_note(config: GatewayConfig) -> str | None:
    """One line listing the unpriced models (``check-config``)."""
    unpriced = unpriced_models(config)
    if not unpriced:
        return None
    return (
        f"unpriced models, refused on the operator's keys (BYOK calls still work): "
        f"{', '.join(unpriced)}; set their input_price/output_price, or "
        "default_input_price/default_output_price on their provider"
    )


def disabled_providers_note(config: GatewayConfig) -> str | None:
    """One line naming the providers switched off for want of a key, and the variable for each."""
    disabled = config.runtime.disabled_providers
    if not disabled:
        return None
    off = ", ".join(f"{name} ({var})" for name, var in sorted(disabled.items()))
    return f"providers off until their key is set: {off}"
