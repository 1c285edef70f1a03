"""The ``gateway`` command: serve, manage API keys, check a configuration.

Messages for the operator go to stderr; stdout carries only what scripts read (a new key is the
last line of ``keys create``). The loaded configuration is never changed: ``serve``'s options
make a new one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from importlib import metadata

import msgspec

from gateway.accounts.keys import create_key, parse_permissions, permission_list
from gateway.config import (
    ConfigError,
    GatewayConfig,
    config_warnings,
    disabled_providers_note,
    load_config,
    unpriced_note,
)
from gateway.storage import Store, open_store


def _load(path: str | None) -> GatewayConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def describe_database(url: str) -> str:
    """``url`` without its credentials."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def database_note(config: GatewayConfig) -> str | None:
    """Which database a command opens, when that is not an SQLite file beside the config (in
    its folder), so a command run against an unexpected database says so."""
    url = config.database_url
    if not url.startswith("sqlite:"):
        return f"database: {describe_database(url)}"
    path = url.removeprefix("sqlite://")
    path = path[1:] if path.startswith("/") else path
    if path in ("", ":memory:"):
        return "database: in memory (nothing is kept)"
    path = os.path.abspath(path)
    base = config.runtime.base_dir and os.path.abspath(config.runtime.base_dir)
    if base and os.path.commonpath([base, path]) == base:
        return None
    new = "" if os.path.exists(path) else " (new: it does not exist yet)"
    return f"database: {path}{new}"


async def _with_store(config: GatewayConfig) -> Store:
    if note := database_note(config):
        print(f"gateway: {note}", file=sys.stderr)
    return await open_store(config.database_url, config.storage.pool_size)


async def _ensure_first_key(config: GatewayConfig) -> str | None:
    store = await _with_store(config)
    try:
        if await store.count_active_keys():
            return None
        tier = config.accounts.operator_tier
        if tier not in config.tiers:
            tier = config.accounts.default_tier
        key, _ = await create_key(
            store, config.keys.prefix, name="default", user="admin@localhost", tier=tier
        )
        return key
    finally:
        await store.close()


def _serving_config(config: GatewayConfig, args: argparse.Namespace) -> GatewayConfig:
    """``config`` with ``serve``'s --host and --port (a new configuration; the loaded one stays
    as it was)."""
    server = config.server
    if args.host:
        server = msgspec.structs.replace(server, host=args.host)
    if args.port is not None:
        server = msgspec.structs.replace(server, port=args.port)
    return config if server is config.server else msgspec.structs.replace(config, server=server)


def cmd_serve(args: argparse.Namespace) -> int:
    config = _serving_config(_load(args.config), args)
    workers = args.workers if args.workers is not None else config.server.workers
    for warning in config_warnings(config, workers):
        print(f"gateway: warning: {warning}", file=sys.stderr)
    if note := disabled_providers_note(config):
        print(f"gateway: {note}", file=sys.stderr)
    key = asyncio.run(_ensure_first_key(config))
    if key:
        print("No API key existed yet, so one was created (it is shown only this once):")
        print(f"  {key}")
    from gateway.lifecycle import leave
    from gateway.server import serve  # binds the port, then prints "Gateway listening on ..."

    # Served, drained and flushed: a supervisor (granian's, or ours for hypercorn workers) has
    # loaded the whole gateway to create the first key, and tearing that down took 1.5-3 s on
    # a loaded machine, after its workers had exited; a second signal is to exit at once.
    leave(serve(config, args.config, workers, args.server))


def cmd_keys_create(args: argparse.Namespace) -> int:
    config = _load(args.config)

    tier = args.tier or config.accounts.default_tier
    if tier not in config.tiers:
        print(f"gateway: unknown tier {tier!r}; tiers: {', '.join(sorted(config.tiers))}",
              file=sys.stderr)
        return 2

    async def create() -> str:
        store = await _with_store(config)
        try:
            key, record = await create_key(
                store, config.keys.prefix, name=args.name, user=args.user, tier=tier,
                permissions=parse_permissions(args.permissions),
            )
        finally:
            await store.close()
        print(f"created key {record.id}: tier {record.tier}, user {record.user or '-'}, "
              f"permissions {_permissions(record.permissions)}, name {record.name or '-'}",
              file=sys.stderr)
        return key

    print(asyncio.run(create()))
    return 0


def _permissions(permissions: str) -> str:
    return "+".join(permission_list(permissions))


def cmd_keys_list(args: argparse.Namespace) -> int:
    config = _load(args.config)

    async def rows() -> list[str]:
        store = await _with_store(config)
        try:
            keys = await store.list_keys(args.user)
        finally:
            await store.close()
        lines = []
        for key in keys:
            state = "revoked" if key.revoked_at else "active"
            used = (
                time.strftime("%Y-%m-%d %H:%M", time.gmtime(key.last_used_at))
                if key.last_used_at
                else "never"
            )
            created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(key.created_at))
            lines.append(
                f"{key.id}\t{key.prefix}…\t{state}\t{key.tier}\t{key.user or '-'}\t"
                f"{_permissions(key.permissions)}\t{key.name or '-'}\t{created}\t{used}"
            )
        return lines

    lines = asyncio.run(rows())
    if not lines:
        print("no keys" + (f" for {args.user}" if args.user else ""))
        return 0
    print("id\tprefix\tstate\ttier\tuser\tpermissions\tname\tcreated\tlast used")
    for line in lines:
        print(line)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    config = _load(args.config)

    async def revoke() -> bool:
        store = await _with_store(config)
        try:
            record = await store.revoke_key(args.key_id)
        finally:
            await store.close()
        if record is not None and config.limits.storage.startswith(("redis", "unix")):
            from gateway.redis_client import announce_revocation

            limits = config.limits
            if not await announce_revocation(limits.storage, limits.redis_prefix, record.key_hash):
                print(
                    "gateway: warning: Redis unreachable; other instances drop the key within "
                    f"storage.key_cache_ttl ({config.storage.key_cache_ttl:g} s)",
                    file=sys.stderr,
                )
        return record is not None

    if asyncio.run(revoke()):
        print(f"revoked {args.key_id}")
        return 0
    print(f"gateway: no active key with id or prefix {args.key_id!r}", file=sys.stderr)
    return 1


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    for warning in config_warnings(config):
        print(f"warning: {warning}")
    if note := disabled_providers_note(config):
        print(f"note: {note}")
    if note := unpriced_note(config):
        print(f"note: {note}")
    if config.runtime.builtin_tiers:
        print(f"note: no [tiers] configured: the built-in conservative tiers apply "
              f"({', '.join(sorted(config.tiers))})")
    print(f"note: database {describe_database(config.database_url)}")
    print(f"ok: {config.runtime.source}: {len(config.providers)} provider(s), "
          f"{len(config.models)} model(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Self-hosted LLM API gateway")
    parser.add_argument("--version", action="version", version=f"gateway {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--config", help="TOML file (default: config/gateway.toml)")
        return sub

    serve = with_config(commands.add_parser("serve", help="serve the API"))
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument(
        "--server",
        choices=("hypercorn", "uvicorn", "granian"),
        default="hypercorn",
        help="ASGI server (default hypercorn; uvicorn and granian need the 'servers' extra)",
    )
    serve.set_defaults(func=cmd_serve)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = with_config(keys.add_parser("create", help="create a key; prints it last"))
    create.add_argument("--name", default="")
    create.add_argument("--user", default="")
    create.add_argument("--tier", help="default: accounts.default_tier")
    create.add_argument("--permissions", default="manage", choices=["inference", "manage"],
                        help="inference: model endpoints only; manage (default): also keys, "
                        "provider keys and billing of --user's account")
    create.set_defaults(func=cmd_keys_create)
    listing = with_config(keys.add_parser("list", help="list keys (never the secrets)"))
    listing.add_argument("--user")
    listing.set_defaults(func=cmd_keys_list)
    revoke = with_config(keys.add_parser("revoke", help="revoke a key by id or prefix"))
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys_revoke)

    check = with_config(commands.add_parser("check-config", help="validate a configuration"))
    check.set_defaults(func=cmd_check_config)
    return parser


def _version() -> str:
    try:
        return metadata.version("llm-gateway")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
