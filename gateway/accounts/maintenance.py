"""The operator's maintenance switch: stored as a setting, cached in ``AccountCache``."""

from __future__ import annotations

import msgspec

from gateway.accounts.userstate import AccountCache


class Maintenance(msgspec.Struct):
    enabled: bool = False
    message: str = ""


async def refresh_maintenance(cache: AccountCache) -> None:
    raw = await cache.store.get_setting("maintenance")
    state = msgspec.json.decode(raw, type=Maintenance) if raw else Maintenance()
    message = state.message or "The gateway is under maintenance; retry later"
    cache.maintenance = message if state.enabled else None


async def set_maintenance(cache: AccountCache, enabled: bool, message: str) -> None:
    await cache.store.set_setting(
        "maintenance", msgspec.json.encode(Maintenance(enabled, message)).decode()
    )
    await refresh_maintenance(cache)
    cache.announce("maintenance")
