"""Reading a configuration: TOML, ``${ENV}`` interpolation, decoding, and what loading derives.

This is the only module that reads the environment for the gateway: ``${VAR}`` references in
the file, ``GATEWAY_CONFIG`` (the file when none is given), ``GATEWAY_SECRET`` and
``GATEWAY_ADMIN_KEY`` (when the file leaves ``accounts.secret`` / ``admin_key`` empty) and
``GATEWAY_METRICS_DIR`` (set by ``gateway serve`` for its workers).

A provider whose ``api_key`` refers to an environment variable that is not set is switched off
(with its models) rather than failing: the embedded default lists every well-known provider and
turns on those whose key is present.

Relative paths in a file (the SQLite database) resolve against that file's folder; the embedded
default's resolve against the checkout, so ``make run`` keeps its database in ``data/``.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from gateway.config.checks import check_config
from gateway.config.schema import (
    AccountsConfig,
    ConfigError,
    GatewayConfig,
    PersonaConfig,
    ProviderConfig,
    RouterConfig,
    Runtime,
    Section,
    Settings,
    TierConfig,
)

CHECKOUT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = CHECKOUT / "config" / "gateway.toml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_RANGE = re.compile(r"^Expected `\w+` (>=|>|<=|<) (\S+)$")
_LENGTH = re.compile(r"^Expected `\w+` of length (>=|<=) (\d+)$")
# Each entry of these tables is checked alone, so an error names its entry.
_NAMED_TABLES: dict[str, type[Section]] = {
    "providers": ProviderConfig, "routers": RouterConfig, "personas": PersonaConfig,
    "tiers": TierConfig,
}


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


def plain_message(message: str) -> str:
    """msgspec's range messages (``Expected `int` >= 1``) in the words an operator expects."""
    if found := _RANGE.match(message):
        operator, bound = found.group(1), format(float(found.group(2)), "g")
        if operator == ">=":
            return "must not be negative" if bound == "0" else f"must be at least {bound}"
        words = {">": "more than", "<=": "at most", "<": "less than"}[operator]
        return f"must be {words} {bound}"
    if found := _LENGTH.match(message):
        least = found.group(1) == ">="
        return f"list {'at least' if least else 'at most'} {found.group(2)} (found too "\
               f"{'few' if least else 'many'})"
    return message


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
                msgspec.convert(trial, Settings)
            except msgspec.ValidationError as exc:
                if str(exc).startswith(message):
                    return f"{prefix}.{key}{rest}"
    return path


def _check_named_tables(raw: dict[str, Any]) -> None:
    """Check each entry of a ``[section.<name>]`` table alone, so an error names its entry
    (msgspec only says ``routers[...]``)."""
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
                raise ConfigError(f"{key}: {plain_message(message)}") from exc


def _decode(raw: dict[str, Any]) -> Settings:
    _check_named_tables(raw)
    try:
        return msgspec.convert(raw, Settings)
    except msgspec.ValidationError as exc:
        message = str(exc)
        where = message.rsplit(" - at `", 1)
        if len(where) == 2:
            key = _locate(raw, where[1].rstrip("`"), where[0])
            message = f"{key}: {plain_message(where[0])}"
        raise ConfigError(message) from exc


def builtin_tiers(accounts: AccountsConfig) -> dict[str, TierConfig]:
    """The tiers of a file without ``[tiers]``: conservative for everyone but the operator."""
    tiers = {
        accounts.default_tier: TierConfig(
            description="built in (no [tiers] configured): conservative limits",
            requests_per_minute=10, requests_per_day=200, tokens_per_day=200_000,
            tokens_per_month=2_000_000, credits_per_day=100, max_keys=2,
        )
    }
    tiers.setdefault(accounts.operator_tier, TierConfig(
        description="built in: the operator's own keys", max_keys=100,
    ))
    return tiers


def resolve_database_url(url: str, base_dir: str) -> str:
    """``storage.url`` with a relative SQLite path made absolute against ``base_dir``."""
    if not base_dir or not url.startswith("sqlite://"):
        return url
    path = url.removeprefix("sqlite://")
    if path in ("", "/", "/:memory:"):
        return url
    relative = path[1:] if path.startswith("/") else path
    if os.path.isabs(relative):
        return url
    return "sqlite:///" + os.path.abspath(os.path.join(base_dir, relative))


def _with_environment(settings: Settings) -> Settings:
    """``accounts.secret`` and ``admin_key`` from the environment when the file leaves them
    empty (the variables the docs name)."""
    accounts = settings.accounts
    secret = accounts.secret or os.environ.get("GATEWAY_SECRET", "")
    admin_key = accounts.admin_key or os.environ.get("GATEWAY_ADMIN_KEY", "")
    if (secret, admin_key) == (accounts.secret, accounts.admin_key):
        return settings
    accounts = msgspec.structs.replace(accounts, secret=secret, admin_key=admin_key)
    return msgspec.structs.replace(settings, accounts=accounts)


def parse_config(text: str, source: str = "<string>", base_dir: str = "") -> GatewayConfig:
    """Parse and check a TOML document; raises ConfigError naming the failing key.

    ``base_dir`` is the folder relative paths resolve against ("" leaves them to the cwd).
    """
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
    settings = _with_environment(_decode(raw))
    builtin = not settings.tiers
    if builtin:
        settings = msgspec.structs.replace(settings, tiers=builtin_tiers(settings.accounts))
    runtime = Runtime(
        source=source,
        base_dir=base_dir,
        database_url=resolve_database_url(settings.storage.url, base_dir),
        disabled_providers=disabled,
        disabled_models=dropped,
        builtin_tiers=builtin,
        metrics_dir=os.environ.get("GATEWAY_METRICS_DIR", ""),
    )
    config = GatewayConfig(**msgspec.structs.asdict(settings), runtime=runtime)
    check_config(config)
    return config


def config_path(path: str | Path | None = None) -> Path:
    """The file ``load_config(path)`` reads: ``path``, else $GATEWAY_CONFIG, else the default."""
    return Path(path) if path else Path(os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG_PATH))


def load_config(path: str | Path | None = None) -> GatewayConfig:
    """Read the file at ``path`` (default: the embedded ``config/gateway.toml``)."""
    file = config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from exc
    absolute = file.resolve()
    base = CHECKOUT if absolute == DEFAULT_CONFIG_PATH else absolute.parent
    return parse_config(text, str(file), str(base))
