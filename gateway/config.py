"""Gateway configuration: TOML with ``${ENV}`` interpolation, decoded into msgspec Structs.

``load_config`` is the only entry point. Errors name the failing key (``models[2].provider``)
and say what is wrong, so ``gateway check-config`` can print them as they are.

A provider whose ``api_key`` refers to an environment variable that is not set is switched off
(with its models) rather than failing: the embedded default lists every well-known provider and
turns on those whose key is present.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "gateway.toml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


class Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every section: unknown keys are typos, so they are refused."""


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 20 * 1024 * 1024
    graceful_timeout: float = 30.0
    # Slow clients: seconds for a request's headers, seconds a request body may send nothing
    # (then 408), and connections one worker holds (then 503).
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    # Seconds before an uncommitted stream sends headers and keep-alive comments.
    commit_timeout: float = 10.0
    log_level: str = "info"


class StorageConfig(Section):
    url: str = "sqlite:///data/gateway.db"
    ledger_batch_size: int = 200
    ledger_flush_interval: float = 0.5
    key_cache_ttl: float = 30.0
    # PostgreSQL only: connections per process (workers x instances x this <= max_connections).
    pool_size: int = 10


class LimitsConfig(Section):
    storage: str = "memory://"
    # Redis only: namespace of every key this gateway writes (one per deployment).
    redis_prefix: str = "gw:"
    # Redis unreachable: "open" carries on without it, "closed" refuses what needs it (503).
    redis_failure: Literal["open", "closed"] = "open"


class CacheConfig(Section):
    """The response cache (gateway.cache): exact match on the normalised request."""

    # "off"; "opt-in": only requests with `X-Cache: use` and keys listed in `keys`;
    # "on": every non-streamed request, unless it sends `X-Cache: bypass`.
    mode: Literal["off", "opt-in", "on"] = "off"
    # Where answers are kept: "memory" (per process) or "redis" (limits.storage, shared).
    backend: Literal["memory", "redis"] = "memory"
    ttl: float = 300.0
    # Requests from these keys (id or name) are cached without asking, in "opt-in" mode.
    keys: list[str] = msgspec.field(default_factory=list)
    # Who shares answers: "key", "user" (default) or "global".
    scope: Literal["key", "user", "global"] = "user"
    max_entries: int = 10_000  # memory backend: least recently stored are evicted
    max_entry_bytes: int = 1024 * 1024  # larger answers are not cached


class UpstreamConfig(Section):
    connect_timeout: float = 10.0
    first_byte_timeout: float = 120.0
    idle_timeout: float = 120.0
    max_connections: int = 4096
    max_connections_per_host: int = 1024


class ProviderConfig(Section):
    kind: Literal["openai", "anthropic", "gemini", "mock"]
    base_url: str = ""
    api_key: str = ""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # Serve any "<provider>/<model>" name, not only the models listed in the catalog.
    allow_any_model: bool = False
    # openai kind: the field a translated request's output cap goes in ("max_tokens", or
    # "max_completion_tokens" for OpenAI itself, whose reasoning models refuse max_tokens).
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    # mock only: generation speed; 0 means as fast as possible.
    tokens_per_second: float = 0.0


class DeploymentConfig(Section):
    """Another place that serves a model: a provider (its own key or region) and its name there."""

    provider: str
    upstream: str = ""
    weight: float = 1.0


class ModelConfig(Section):
    id: str
    provider: str
    upstream: str = ""
    input_price: float = 0.0
    output_price: float = 0.0
    cached_input_price: float | UnsetType = UNSET
    context: int = 128_000
    max_output: int = 16_384
    capabilities: list[str] = msgspec.field(default_factory=lambda: ["tools"])
    aliases: list[str] = msgspec.field(default_factory=list)
    free: bool = False
    credits: int = 1
    # Models tried in order when this one fails (at most four: a plan holds five models).
    fallbacks: list[str] = msgspec.field(default_factory=list)
    # More deployments besides provider/upstream, and how a request picks among them.
    deployments: list[DeploymentConfig] = msgspec.field(default_factory=list)
    strategy: Literal["weighted", "least_busy", "latency"] = "weighted"
    weight: float = 1.0


class KeysConfig(Section):
    prefix: str = "gw-"


class TierConfig(Section):
    """One account tier; 0 means unlimited for every limit."""

    description: str = ""
    requests_per_minute: int = 0
    requests_per_day: int = 0
    tokens_per_day: int = 0
    tokens_per_month: int = 0
    credits_per_day: int = 0
    max_keys: int = 0
    # Prepaid tiers draw a balance down by cost and refuse with 402 when it cannot cover a call.
    prepaid: bool = False
    # Models this tier may call (ids or aliases); empty means every model.
    models: list[str] = msgspec.field(default_factory=list)
    # Monthly price shown by checkout (USD); informational.
    price_usd: float = 0.0


class AccountsConfig(Section):
    """Users, sessions, admin access, BYOK and notifications."""

    default_tier: str = "free"
    # Tier of the key `gateway serve` creates on first start (the operator's own).
    operator_tier: str = "enterprise"
    # Admin API key (Bearer) for /v1/admin/*; empty switches the admin API off.
    admin_key: str = ""
    # Server secret that encrypts stored provider keys (BYOK); empty switches BYOK off.
    secret: str = ""
    # Tiers a user may switch to by POST /v1/billing/checkout; empty means operator-only.
    self_service_tiers: list[str] = msgspec.field(default_factory=list)
    signup: bool = True
    cache_ttl: float = 5.0
    session_ttl: float = 30 * 86400.0
    reset_token_ttl: float = 3600.0
    login_max_failures: int = 5
    login_lockout: float = 300.0
    # Output tokens reserved for a call that does not say max_tokens (balance and token limits).
    output_reserve_tokens: int = 1024
    # Where reset tokens and other notices go: "" logs them, an http(s) URL gets a JSON POST.
    notify_webhook: str = ""


class RoutingConfig(Section):
    """Retries, cool-downs and router names (see docs/routing.md)."""

    # Rounds over a plan's targets after all have failed (fallbacks always come first).
    retries: int = 1
    backoff_base: float = 0.25         # seconds; doubles each round, with jitter
    backoff_max: float = 4.0
    max_retry_wait: float = 5.0        # a longer Retry-After goes back to the caller instead
    allowed_fails: int = 3             # failures in a row that bench a deployment
    cooldown: float = 30.0             # seconds on the bench (a 429 uses its Retry-After)
    max_cooldown: float = 300.0
    # "memory://": per process, shared through Redis when limits.storage is Redis;
    # "local": per process always (gateway.redis_health).
    health: str = "memory://"
    # Routers answer to "<prefix>/<name>" too (e.g. "router/auto").
    router_prefixes: list[str] = msgspec.field(default_factory=lambda: ["router"])


class RouterRuleConfig(Section):
    when: Literal["images", "tools", "audio", "long_context", "code", "always"]
    models: list[str]
    min_prompt_tokens: int = 32000


class RouterConfig(Section):
    kind: Literal["auto", "free", "ocr", "fallback"]
    # auto: the default chain; free: the rotation (empty: every model marked free);
    # ocr and fallback: the chain.
    models: list[str] = msgspec.field(default_factory=list)
    rules: list[RouterRuleConfig] = msgspec.field(default_factory=list)
    # A system prompt put ahead of the caller's (ocr: the extraction prompt; empty: built in).
    prompt: str = ""
    temperature: float | UnsetType = UNSET
    max_tokens: int | UnsetType = UNSET
    description: str = ""


class PersonaConfig(Section):
    target: str                        # a model, alias or router
    system: str = ""                   # sent ahead of the caller's system prompt
    temperature: float | UnsetType = UNSET  # used when the caller sets none
    max_tokens: int | UnsetType = UNSET     # a cap, and the default when the caller sets none
    description: str = ""


class GatewayConfig(Section):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    cache: CacheConfig = msgspec.field(default_factory=CacheConfig)
    upstream: UpstreamConfig = msgspec.field(default_factory=UpstreamConfig)
    keys: KeysConfig = msgspec.field(default_factory=KeysConfig)
    providers: dict[str, ProviderConfig] = msgspec.field(default_factory=dict)
    models: list[ModelConfig] = msgspec.field(default_factory=list)
    tiers: dict[str, TierConfig] = msgspec.field(default_factory=dict)
    accounts: AccountsConfig = msgspec.field(default_factory=AccountsConfig)
    # Providers switched off because their API key variable is unset (name -> variable).
    disabled_providers: dict[str, str] = msgspec.field(default_factory=dict)
    source: str = ""
    routing: RoutingConfig = msgspec.field(default_factory=lambda: RoutingConfig())
    routers: dict[str, RouterConfig] = msgspec.field(default_factory=dict)
    personas: dict[str, PersonaConfig] = msgspec.field(default_factory=dict)
    # Names of models switched off with their provider (routers may still mention them).
    # Names of the models switched off with their provider (name -> provider).
    disabled_models: dict[str, str] = msgspec.field(default_factory=dict)


class _MissingEnv(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _interpolate(value: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise _MissingEnv(name)

    return _ENV_REF.sub(substitute, value)


def _interpolate_tree(node: Any, path: str, missing: dict[str, str]) -> Any:
    if isinstance(node, str):
        try:
            return _interpolate(node)
        except _MissingEnv as exc:
            missing[path] = exc.name
            return ""
    if isinstance(node, dict):
        return {
            key: _interpolate_tree(value, f"{path}.{key}" if path else key, missing)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_interpolate_tree(item, f"{path}[{i}]", missing) for i, item in enumerate(node)]
    return node


def _drop_providers_without_keys(raw: dict[str, Any], missing: dict[str, str]) -> dict[str, str]:
    """Switch off providers whose key variable is unset; any other missing variable is an error."""
    disabled: dict[str, str] = {}
    for path, variable in missing.items():
        parts = path.split(".")
        if len(parts) == 3 and parts[0] == "providers" and parts[2] == "api_key":
            disabled[parts[1]] = variable
            continue
        raise ConfigError(f"{path}: environment variable {variable} is not set")
    providers = raw.get("providers", {})
    for name in disabled:
        providers.pop(name, None)
    if disabled:
        raw["models"] = [m for m in raw.get("models", []) if m.get("provider") not in disabled]
    return disabled


def _locate(raw: dict[str, Any], msgspec_path: str, message: str) -> str:
    """Turn msgspec's ``$.models[2].provider`` into ``models[2].provider``.

    msgspec writes a table's key as ``[...]``; the key is found by converting the table one
    entry at a time until the same error comes back.
    """
    path = msgspec_path.removeprefix("$.").removeprefix("$")
    prefix, marker, rest = path.partition("[...]")
    if not marker:
        return path
    table = raw
    for part in prefix.split("."):
        table = table.get(part, {}) if isinstance(table, dict) else {}
    if isinstance(table, dict):
        for key, value in table.items():
            trial = copy.deepcopy(raw)
            holder = trial
            parts = prefix.split(".")
            for part in parts[:-1]:
                holder = holder[part]
            holder[parts[-1]] = {key: value}
            try:
                msgspec.convert(trial, GatewayConfig)
            except msgspec.ValidationError as exc:
                if str(exc).startswith(message):
                    return f"{prefix}.{key}{rest}"
    return path


def parse_config(text: str, source: str = "<string>") -> GatewayConfig:
    """Parse and check a TOML document; raises ConfigError naming the failing key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    missing: dict[str, str] = {}
    raw = _interpolate_tree(raw, "", missing)
    all_models = [m for m in raw.get("models", []) if isinstance(m, dict)]
    disabled = _drop_providers_without_keys(raw, missing)
    dropped = {
        name: str(m["provider"])
        for m in all_models
        if m.get("provider") in disabled
        for name in (m.get("id"), *(m.get("aliases") or ()))
        if isinstance(name, str)
    }
    _check_named_tables(raw)
    try:
        config = msgspec.convert(raw, GatewayConfig)
    except msgspec.ValidationError as exc:
        message = str(exc)
        where = message.rsplit(" - at `", 1)
        if len(where) == 2:
            key = _locate(raw, where[1].rstrip("`"), where[0])
            message = f"{key}: {where[0]}"
        raise ConfigError(message) from exc
    config.disabled_providers = disabled
    config.disabled_models = dropped
    config.source = source
    _check_consistency(config)
    _check_routing(config)
    return config


_NAMED_TABLES: dict[str, type[Section]] = {}


def _check_named_tables(raw: dict[str, Any]) -> None:
    """Check each entry of a ``[section.<name>]`` table alone, so an error names its entry
    (msgspec only says ``routers[...]``)."""
    if not _NAMED_TABLES:
        _NAMED_TABLES.update(
            providers=ProviderConfig, routers=RouterConfig, personas=PersonaConfig
        )
    for section, kind in _NAMED_TABLES.items():
        table = raw.get(section)
        if not isinstance(table, dict):
            continue
        for name, value in table.items():
            try:
                msgspec.convert(value, kind)
            except msgspec.ValidationError as exc:
                message, _, where = str(exc).rpartition(" - at `")
                if not message:
                    message, where = str(exc), "$"
                key = f"{section}.{name}" + where.rstrip("`").removeprefix("$")
                raise ConfigError(f"{key}: {message}") from exc


def _check_consistency(config: GatewayConfig) -> None:
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
        if model.input_price < 0 or model.output_price < 0:
            raise ConfigError(f"{where}: prices must not be negative")
    for name, provider in config.providers.items():
        if provider.kind != "mock" and not provider.base_url:
            raise ConfigError(f"providers.{name}.base_url: required for kind {provider.kind!r}")
    if config.server.port < 0 or config.server.port > 65535:
        raise ConfigError("server.port: must be between 0 and 65535")
    if config.server.workers < 1:
        raise ConfigError("server.workers: must be at least 1")
    _check_scaleout(config)
    _check_tiers(config)


def _check_scaleout(config: GatewayConfig) -> None:
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
    if config.storage.pool_size < 1:
        raise ConfigError("storage.pool_size: must be at least 1")
    if config.cache.ttl <= 0:
        raise ConfigError("cache.ttl: must be positive (seconds)")


def _check_tiers(config: GatewayConfig) -> None:
    tiers = config.tiers
    if tiers and config.accounts.default_tier not in tiers:
        raise ConfigError(
            f"accounts.default_tier: {config.accounts.default_tier!r} is not a configured tier "
            f"({', '.join(sorted(tiers))})"
        )
    for name in config.accounts.self_service_tiers:
        if name not in tiers:
            raise ConfigError(f"accounts.self_service_tiers: unknown tier {name!r}")
    for name, tier in tiers.items():
        for field_name in ("requests_per_minute", "requests_per_day", "tokens_per_day",
                           "tokens_per_month", "credits_per_day", "max_keys"):
            if getattr(tier, field_name) < 0:
                raise ConfigError(f"tiers.{name}.{field_name}: must not be negative")


def load_config(path: str | Path | None = None) -> GatewayConfig:
    """Read the file at ``path`` (default: the embedded ``config/gateway.toml``)."""
    config_path = (
        Path(path) if path else Path(os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG_PATH))
    )
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot read: {exc.strerror}") from exc
    return parse_config(text, str(config_path))


def config_warnings(config: GatewayConfig) -> list[str]:
    """Things that work but are probably not what the operator wants."""
    warnings = []
    if config.server.workers > 1 and config.limits.storage.startswith("memory"):
        warnings.append(
            "server.workers > 1 with limits.storage = memory://: each worker counts limits "
            "on its own; use redis:// to share them"
        )
    if config.server.workers > 1 and config.storage.url.startswith("sqlite:"):
        warnings.append(
            "server.workers > 1 with SQLite: workers share the file but write one at a time; "
            "use postgresql:// for several workers or instances"
        )
    if (
        config.server.workers > 1
        and config.cache.mode != "off"
        and config.cache.backend == "memory"
    ):
        warnings.append(
            "server.workers > 1 with cache.backend = memory: each worker caches on its own; "
            'use "redis" to share answers'
        )
    return warnings


def _model_name_status(config: GatewayConfig, names: set[str], name: str) -> str:
    """``ok``, ``disabled`` (its provider has no key) or ``unknown``."""
    if name in names:
        return "ok"
    if name in config.disabled_models:
        return "disabled"
    provider, _, upstream = name.partition("/")
    if upstream:
        if provider in config.providers and config.providers[provider].allow_any_model:
            return "ok"
        if provider in config.disabled_providers:
            return "disabled"
    return "unknown"


def _check_routing(config: GatewayConfig) -> None:
    """Routers, personas, fallbacks and deployments name things that exist."""
    routing = config.routing
    for key in ("retries", "backoff_base", "backoff_max", "max_retry_wait", "cooldown",
                "max_cooldown"):
        if getattr(routing, key) < 0:
            raise ConfigError(f"routing.{key}: must not be negative")
    if routing.allowed_fails < 1:
        raise ConfigError("routing.allowed_fails: must be at least 1")
    if not routing.health.startswith("memory://") and routing.health != "local":
        raise ConfigError(
            'routing.health: "memory://" (shared through Redis when limits.storage is Redis) '
            'or "local" (always per process)'
        )
    for prefix in routing.router_prefixes:
        if not prefix or "/" in prefix:
            raise ConfigError(f"routing.router_prefixes: {prefix!r} must be a word without '/'")
    models: set[str] = set()
    for model in config.models:
        models.add(model.id)
        models.update(model.aliases)
    taken: dict[str, str] = {name: "a model" for name in models}
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

    def check_model(where: str, name: str) -> None:
        if name in config.routers or name in config.personas:
            raise ConfigError(f"{where}: {name!r} is a router or persona; name a model here")
        if _model_name_status(config, models, name) == "unknown":
            raise ConfigError(f"{where}: unknown model {name!r}")

    for index, model in enumerate(config.models):
        where = f"models[{index}]"
        if len(model.fallbacks) > 4:
            raise ConfigError(f"{where}.fallbacks: at most 4 (a plan holds 5 models)")
        for position, name in enumerate(model.fallbacks):
            check_model(f"{where}.fallbacks[{position}]", name)
        if model.weight <= 0:
            raise ConfigError(f"{where}.weight: must be more than 0")
        for position, deployment in enumerate(model.deployments):
            at = f"{where}.deployments[{position}]"
            if (deployment.provider not in config.providers
                    and deployment.provider not in config.disabled_providers):
                raise ConfigError(f"{at}.provider: unknown provider {deployment.provider!r}")
            if deployment.weight <= 0:
                raise ConfigError(f"{at}.weight: must be more than 0")
    for name, router in config.routers.items():
        where = f"routers.{name}"
        for position, model_name in enumerate(router.models):
            check_model(f"{where}.models[{position}]", model_name)
        for number, rule in enumerate(router.rules):
            if router.kind != "auto":
                raise ConfigError(f"{where}.rules: only routers of kind 'auto' have rules")
            if not rule.models:
                raise ConfigError(f"{where}.rules[{number}].models: list at least one model")
            for position, model_name in enumerate(rule.models):
                check_model(f"{where}.rules[{number}].models[{position}]", model_name)
        if router.kind in ("ocr", "fallback", "auto") and not router.models:
            raise ConfigError(f"{where}.models: list at least one model")
        if router.max_tokens is not UNSET and router.max_tokens < 1:
            raise ConfigError(f"{where}.max_tokens: must be at least 1")
    for name, persona in config.personas.items():
        where = f"personas.{name}"
        if persona.target in config.personas:
            raise ConfigError(f"{where}.target: {persona.target!r} is a persona; name a model "
                              "or router")
        is_router = persona.target in config.routers or any(
            persona.target == f"{p}/{r}" for p in routing.router_prefixes for r in config.routers
        )
        if not is_router and _model_name_status(config, models, persona.target) == "unknown":
            raise ConfigError(f"{where}.target: unknown model or router {persona.target!r}")
        if persona.max_tokens is not UNSET and persona.max_tokens < 1:
            raise ConfigError(f"{where}.max_tokens: must be at least 1")
        if persona.temperature is not UNSET and not 0 <= persona.temperature <= 2:
            raise ConfigError(f"{where}.temperature: must be between 0 and 2")


def disabled_providers_note(config: GatewayConfig) -> str | None:
    """One line naming the providers switched off for want of a key, and the variable for each."""
    if not config.disabled_providers:
        return None
    off = ", ".join(f"{name} ({var})" for name, var in sorted(config.disabled_providers.items()))
    return f"providers off until their key is set: {off}"
