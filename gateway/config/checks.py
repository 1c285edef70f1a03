"""Checks across keys that types cannot express, and warnings about working but risky setups.

Single-key ranges are declared on the schema's types; what is left here is whether names refer
to things that exist (providers, tiers, models, routers), and which URLs are supported.
"""

from __future__ import annotations

import ipaddress

from msgspec import UNSET

from adapters.registry import modes_of, needs_base_url
from gateway.config.schema import ConfigError, GatewayConfig, ModelConfig
from routers.catalog import TOKEN_MODES


def check_config(config: GatewayConfig) -> None:
    """Raise ConfigError, naming the key, for the first inconsistency found."""
    _check_models(config)
    _check_modes(config)
    _check_urls(config)
    _check_tiers(config)
    _check_accounts(config)
    _check_routing_names(config)
    _check_model_references(config)
    _check_routers(config)


def _check_models(config: GatewayConfig) -> None:
    seen: dict[str, int] = {}
    for index, model in enumerate(config.models):
        where = f"models[{index}]"
        if model.provider not in config.providers:
            known = ", ".join(sorted(config.providers)) or "none"
            raise ConfigError(
                f"{where}.provider: unknown provider {model.provider!r} (configured: {known})"
            )
        for name in (model.id, *model.aliases):
            if name in seen:
                raise ConfigError(f"{where}: name {name!r} is already used by models[{seen[name]}]")
            seen[name] = index
    for name, provider in config.providers.items():
        if not provider.base_url and needs_base_url(provider.kind):
            raise ConfigError(f"providers.{name}.base_url: required for kind {provider.kind!r}")
        if provider.responses_api and provider.kind != "openai":
            raise ConfigError(f"providers.{name}.responses_api: only an openai-kind provider "
                              f"serves the Responses API, not kind {provider.kind!r}")


# The price keys each mode is billed by (docs/modes.md).
_MODE_PRICES = {
    "chat": ("input_price", "output_price", "cached_input_price"),
    "embeddings": ("input_price",),
    "rerank": ("input_price",),
    "moderation": ("input_price",),
    "images": ("price_per_image", "input_price", "output_price", "cached_input_price"),
    "video": ("price_per_second", "price_per_video"),
}
_PRICE_KEYS = ("input_price", "output_price", "cached_input_price", "price_per_image",
               "price_per_second", "price_per_video")


def _check_modes(config: GatewayConfig) -> None:
    """Each model is priced by its mode's keys and served by a provider kind that has the
    mode; fallbacks, routers and personas stay within one mode."""
    modes: dict[str, str] = {
        name: model.mode for model in config.models for name in (model.id, *model.aliases)
    }
    for index, model in enumerate(config.models):
        where = f"models[{index}]"
        allowed = _MODE_PRICES[model.mode]
        for key in _PRICE_KEYS:
            if getattr(model, key) is not UNSET and key not in allowed:
                raise ConfigError(f"{where}.{key}: a {model.mode} model is priced by "
                                  f"{' or '.join(allowed)}")
        kind = config.providers[model.provider].kind
        served = modes_of(kind)
        if model.mode not in served:
            raise ConfigError(f"{where}.mode: provider {model.provider!r} (kind {kind!r}) "
                              f"serves {', '.join(served)} models, not {model.mode}")
        for position, name in enumerate(model.fallbacks):
            _check_same_mode(modes, f"{where}.fallbacks[{position}]", name, model.mode,
                             f"a {model.mode} model falls back to {model.mode} models")
    for name, router in config.routers.items():
        names = [*router.models, *(m for rule in router.rules for m in rule.models)]
        first = next((modes[n] for n in names if n in modes), "chat")
        if router.kind == "ocr":
            first = "chat"
        for position, model_name in enumerate(names):
            _check_same_mode(modes, f"routers.{name}.models[{position}]", model_name, first,
                             f"a router routes models of one mode ({first})")
    for name, persona in config.personas.items():
        _check_same_mode(modes, f"personas.{name}.target", persona.target, "chat",
                         "a persona adds a system prompt, so it targets a chat model")


def _check_same_mode(
    modes: dict[str, str], where: str, name: str, mode: str, rule: str
) -> None:
    found = modes.get(name)
    if found is not None and found != mode:
        raise ConfigError(f"{where}: {name!r} is a {found} model; {rule}")


def _check_urls(config: GatewayConfig) -> None:
    limits_url = config.limits.storage.removeprefix("async+")
    storage_url = config.storage.url
    if not storage_url.startswith(("sqlite:", "postgresql:", "postgres:", "postgresql+asyncpg:")):
        raise ConfigError(
            f"storage.url: unsupported URL {storage_url.split(':')[0]!r}: "
            "use sqlite:///path or postgresql://user@host:5432/db"
        )
    if config.cache.backend == "redis" and not limits_url.startswith(("redis", "unix")):
        raise ConfigError(
            'cache.backend: "redis" needs limits.storage = "redis://…" (the Redis it uses)'
        )
    health = config.routing.health
    if not health.startswith("memory://") and health != "local":
        raise ConfigError(
            'routing.health: "memory://" (shared through Redis when limits.storage is Redis) '
            'or "local" (always per process)'
        )


def _check_tiers(config: GatewayConfig) -> None:
    tiers = config.tiers
    if config.accounts.default_tier not in tiers:
        raise ConfigError(
            f"accounts.default_tier: {config.accounts.default_tier!r} is not a configured tier "
            f"({', '.join(sorted(tiers))})"
        )
    for name in config.accounts.self_service_tiers:
        if name not in tiers:
            raise ConfigError(f"accounts.self_service_tiers: unknown tier {name!r}")


_SECRET_HINT = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def _check_accounts(config: GatewayConfig) -> None:
    """Secrets long enough to resist guessing, notices that can be delivered, proxies that are
    addresses."""
    accounts = config.accounts
    if accounts.secret and len(accounts.secret.encode()) < 32:
        raise ConfigError(
            f"accounts.secret (GATEWAY_SECRET): at least 32 bytes are needed; {_SECRET_HINT}"
        )
    if accounts.admin_key and len(accounts.admin_key) < 32:
        raise ConfigError(
            f"accounts.admin_key (GATEWAY_ADMIN_KEY): at least 32 characters; {_SECRET_HINT}"
        )
    if accounts.notify == "smtp" and not accounts.smtp.host:
        raise ConfigError('accounts.smtp.host: required with accounts.notify = "smtp"')
    if accounts.notify == "webhook" and not accounts.notify_webhook:
        raise ConfigError('accounts.notify_webhook: required with accounts.notify = "webhook"')
    delivers = accounts.notify not in ("", "off") or (
        not accounts.notify and bool(accounts.notify_webhook or accounts.smtp.host))
    if accounts.verify_email and not delivers:
        raise ConfigError(
            'accounts.verify_email: needs a way to send the link: accounts.notify = "smtp" '
            '(with [accounts.smtp]), "webhook" (with notify_webhook) or "log"'
        )
    for index, proxy in enumerate(config.server.trusted_proxies):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError as exc:
            raise ConfigError(
                f"server.trusted_proxies[{index}]: {proxy!r} is not an address or network"
            ) from exc


def model_names(config: GatewayConfig) -> set[str]:
    """Every catalog id and alias."""
    names: set[str] = set()
    for model in config.models:
        names.add(model.id)
        names.update(model.aliases)
    return names


def model_name_status(config: GatewayConfig, names: set[str], name: str) -> str:
    """``ok``, ``disabled`` (its provider has no key) or ``unknown``."""
    if name in names:
        return "ok"
    if name in config.runtime.disabled_models:
        return "disabled"
    provider, _, upstream = name.partition("/")
    if upstream:
        if provider in config.providers and config.providers[provider].allow_any_model:
            return "ok"
        if provider in config.runtime.disabled_providers:
            return "disabled"
    return "unknown"


def _check_routing_names(config: GatewayConfig) -> None:
    """Router and persona names are words, and no name stands for two things."""
    routing = config.routing
    for prefix in routing.router_prefixes:
        if not prefix or "/" in prefix:
            raise ConfigError(f"routing.router_prefixes: {prefix!r} must be a word without '/'")
    taken: dict[str, str] = {name: "a model" for name in model_names(config)}
    for name in config.routers:
        if name in taken:
            raise ConfigError(f"routers.{name}: the name is already used by {taken[name]}")
        taken[name] = "a router"
        for prefix in routing.router_prefixes:
            taken[f"{prefix}/{name}"] = "a router"
    for name in config.personas:
        if name in taken:
            raise ConfigError(f"personas.{name}: the name is already used by {taken[name]}")
        taken[name] = "a persona"


def _check_model(config: GatewayConfig, names: set[str], where: str, name: str) -> None:
    if name in config.routers or name in config.personas:
        raise ConfigError(f"{where}: {name!r} is a router or persona; name a model here")
    if model_name_status(config, names, name) == "unknown":
        raise ConfigError(f"{where}: unknown model {name!r}")


def _check_model_references(config: GatewayConfig) -> None:
    """Fallbacks and deployments name models and providers that exist."""
    names = model_names(config)
    for index, model in enumerate(config.models):
        where = f"models[{index}]"
        for position, name in enumerate(model.fallbacks):
            _check_model(config, names, f"{where}.fallbacks[{position}]", name)
        for position, deployment in enumerate(model.deployments):
            at = f"{where}.deployments[{position}]"
            if (deployment.provider not in config.providers
                    and deployment.provider not in config.runtime.disabled_providers):
                raise ConfigError(f"{at}.provider: unknown provider {deployment.provider!r}")


def _check_routers(config: GatewayConfig) -> None:
    """Routers and personas name models (or routers) that exist."""
    names = model_names(config)
    for name, router in config.routers.items():
        where = f"routers.{name}"
        for position, model_name in enumerate(router.models):
            _check_model(config, names, f"{where}.models[{position}]", model_name)
        for number, rule in enumerate(router.rules):
            if router.kind != "auto":
                raise ConfigError(f"{where}.rules: only routers of kind 'auto' have rules")
            for position, model_name in enumerate(rule.models):
                _check_model(config, names, f"{where}.rules[{number}].models[{position}]",
                             model_name)
        if router.kind in ("ocr", "fallback", "auto") and not router.models:
            raise ConfigError(f"{where}.models: list at least one model")
    prefixes = config.routing.router_prefixes
    for name, persona in config.personas.items():
        where = f"personas.{name}"
        if persona.target in config.personas:
            raise ConfigError(f"{where}.target: {persona.target!r} is a persona; name a model "
                              "or router")
        is_router = persona.target in config.routers or any(
            persona.target == f"{p}/{r}" for p in prefixes for r in config.routers
        )
        if not is_router and model_name_status(config, names, persona.target) == "unknown":
            raise ConfigError(f"{where}.target: unknown model or router {persona.target!r}")


# --- prices ---


def has_price(config: GatewayConfig, model: ModelConfig) -> bool:
    """Whether calls to ``model`` on the operator's key have a price (free counts as one).

    A provider's ``default_input_price``/``default_output_price`` are per token, so they price
    only the modes billed by tokens (chat, embeddings, rerank, moderation): an images or video
    model without a price of its own (``price_per_image``; ``price_per_second`` or
    ``price_per_video``) is unpriced."""
    provider = config.providers[model.provider]
    own = any(getattr(model, key) is not UNSET for key in _MODE_PRICES[model.mode]
              if key != "cached_input_price")
    defaults = model.mode in TOKEN_MODES and (
        provider.default_input_price is not UNSET or provider.default_output_price is not UNSET
    )
    return (
        model.free
        or provider.kind == "mock"  # the built-in mock spends nobody's key
        or own
        or defaults
    )


def model_prices(config: GatewayConfig, model: ModelConfig) -> tuple[float, float]:
    """USD per 1M input and output tokens: the model's own, else (for modes billed by
    tokens) its provider's defaults."""
    provider = config.providers[model.provider]
    listed = model.input_price is not UNSET or model.output_price is not UNSET
    if not listed and model.mode not in TOKEN_MODES:
        return 0.0, 0.0
    input_price = model.input_price if listed else provider.default_input_price
    output_price = model.output_price if listed else provider.default_output_price
    return (
        float(input_price) if input_price is not UNSET else 0.0,
        float(output_price) if output_price is not UNSET else 0.0,
    )


def default_prices(config: GatewayConfig) -> dict[str, tuple[float, float]]:
    """Prices of unlisted ``<provider>/<model>`` names, for providers that set defaults."""
    return {
        name: (
            float(p.default_input_price) if p.default_input_price is not UNSET else 0.0,
            float(p.default_output_price) if p.default_output_price is not UNSET else 0.0,
        )
        for name, p in config.providers.items()
        if p.default_input_price is not UNSET or p.default_output_price is not UNSET
        or p.kind == "mock"
    }


def unpriced_models(config: GatewayConfig) -> list[str]:
    """Models the operator's key would serve without a price: listed ones with none, and
    ``<provider>/*`` for providers that serve any name without default prices."""
    found = [model.id for model in config.models if not has_price(config, model)]
    defaults = default_prices(config)
    found += [
        f"{name}/*" for name, provider in config.providers.items()
        if provider.allow_any_model and name not in defaults
    ]
    return found
