"""The ``gateway`` command: serve, manage API keys, check a configuration."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from gateway.auth import create_key
from gateway.config import (
    ConfigError,
    GatewayConfig,
    config_warnings,
    disabled_providers_note,
    load_config,
)
from gateway.storage import Store, open_store


def _load(path: str | None) -> GatewayConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


async def _with_store(config: GatewayConfig) -> Store:
    return await open_store(config.storage.url)


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


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if args.host:
        config.server.host = args.host
    if args.port is not None:
        config.server.port = args.port
    workers = args.workers if args.workers is not None else config.server.workers
    for warning in config_warnings(config):
        print(f"gateway: warning: {warning}", file=sys.stderr)
    if note := disabled_providers_note(config):
        print(f"gateway: {note}", file=sys.stderr)
    key = asyncio.run(_ensure_first_key(config))
    if key:
        print("No API key existed yet, so one was created (it is shown only this once):")
        print(f"  {key}")
    from gateway.server import serve  # binds the port, then prints "Gateway listening on ..."

    return serve(config, args.config, workers, args.server)


def cmd_keys_create(args: argparse.Namespace) -> int:
    config = _load(args.config)

    async def create() -> str:
        store = await _with_store(config)
        try:
            key, _ = await create_key(
                store, config.keys.prefix, name=args.name, user=args.user, tier=args.tier
            )
            return key
        finally:
            await store.close()

    print(asyncio.run(create()))
    return 0


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
                f"{key.name or '-'}\tcreated {created}\tlast used {used}"
            )
        return lines

    for line in asyncio.run(rows()):
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
    print(
        f"ok: {config.source}: {len(config.providers)} provider(s), {len(config.models)} model(s)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Self-hosted LLM API gateway")
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
    create.add_argument("--tier", default="free")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
