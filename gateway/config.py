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


class GatewayConfig(Section):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    cache: CacheConfig = msgspec.field(default_factory=CacheConfig)
    upstream: UpstreamConfig = msgspec.field(default_factory=UpstreamConfig)
    keys: KeysConfig = msgspec.field(default_factory=KeysConfig)
    providers: dict[str, ProviderConfig] = msgspec.field(default_factory=dict)
    models: list[ModelConfig] = msgspec.field(default_factory=list)
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
    _check_scaleout(config)


def _check_scaleout(config: GatewayConfig) -> None:
    limits_url = config.limits.storage
    if not limits_url.startswith(("memory://", "redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"limits.storage: unsupported URL {limits_url.split(':')[0]!r}: "
            "use memory:// or redis://host:port[/db]"
        )
    storage_url = config.storage.url
    if not storage_url.startswith(("sqlite:", "postgresql:", "postgres:", "postgresql+asyncpg:")):
        raise ConfigError(
            f"storage.url: unsupported URL {storage_url.split(':')[0]!r}: "
            "use sqlite:///path or postgresql://user@host:5432/db"
        )
    if config.cache.backend == "redis" and limits_url.startswith("memory"):
        raise ConfigError(
            'cache.backend: "redis" needs limits.storage = "redis://…" (the Redis it uses)'
        )
    if config.storage.pool_size < 1:
        raise ConfigError("storage.pool_size: must be at least 1")
    if config.cache.ttl <= 0:
        raise ConfigError("cache.ttl: must be positive (seconds)")


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


def disabled_providers_note(config: GatewayConfig) -> str | None:
    """One line naming the providers switched off for want of a key, and the variable for each."""
    if not config.disabled_providers:
        return None
    off = ", ".join(f"{name} ({var})" for name, var in sorted(config.disabled_providers.items()))
    return f"providers off until their key is set: {off}"
