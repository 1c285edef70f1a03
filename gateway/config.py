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
    # Seconds before an uncommitted stream sends headers and keep-alive comments.
    commit_timeout: float = 10.0
    log_level: str = "info"


class StorageConfig(Section):
    url: str = "sqlite:///data/gateway.db"
    ledger_batch_size: int = 200
    ledger_flush_interval: float = 0.5
    key_cache_ttl: float = 30.0


class LimitsConfig(Section):
    storage: str = "memory://"


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
    # mock only: generation speed; 0 means as fast as possible.
    tokens_per_second: float = 0.0


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


class GatewayConfig(Section):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    upstream: UpstreamConfig = msgspec.field(default_factory=UpstreamConfig)
    keys: KeysConfig = msgspec.field(default_factory=KeysConfig)
    providers: dict[str, ProviderConfig] = msgspec.field(default_factory=dict)
    models: list[ModelConfig] = msgspec.field(default_factory=list)
    tiers: dict[str, TierConfig] = msgspec.field(default_factory=dict)
    accounts: AccountsConfig = msgspec.field(default_factory=AccountsConfig)
    # Providers switched off because their API key variable is unset (name -> variable).
    disabled_providers: dict[str, str] = msgspec.field(default_factory=dict)
    source: str = ""


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
    disabled = _drop_providers_without_keys(raw, missing)
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
    config.source = source
    _check_consistency(config)
    return config


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
    _check_tiers(config)


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
    return warnings


def disabled_providers_note(config: GatewayConfig) -> str | None:
    """One line naming the providers switched off for want of a key, and the variable for each."""
    if not config.disabled_providers:
        return None
    off = ", ".join(f"{name} ({var})" for name, var in sorted(config.disabled_providers.items()))
    return f"providers off until their key is set: {off}"
