"""The real app in-process for the platform tests (httpx's ASGI transport, SQLite in a temporary
folder), with a plugin catalog, a release feed and tiers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from gateway.accounts.keys import create_key
from tests import test_account_security as security
from tests.seam import in_process

ADMIN = "admin-key-of-the-platform-tests-0123456789"
BASE = """
[storage]
url = "sqlite:///{tmp}/gateway.db"

[server]
trusted_proxies = ["127.0.0.1"]

[accounts]
admin_key = "{admin}"

[providers.mock]
kind = "mock"

[[models]]
id = "mock/echo"
provider = "mock"
upstream = "echo"
credits = 3

[[models]]
id = "mock/small"
provider = "mock"
upstream = "echo"
free = true

[tiers.free]
credits_per_day = 100
requests_per_minute = 40
[tiers.enterprise]

[[plugins]]
name = "git-helper"
description = "Commit messages from staged diffs"
version = "1.2.0"
tags = ["git", "vcs"]
repository = "https://example.com/git-helper"

[[plugins]]
name = "test-runner"
description = "Runs the project's tests and explains failures (Git-aware)"
version = "0.3.1"
tags = ["testing"]

[[releases]]
version = "0.9.0"
date = "2026-10-01"
notes = "nine"
url = "https://example.com/0.9.0"

[[releases]]
version = "0.10.0"
date = "2026-11-01"
notes = "ten"
url = "https://example.com/0.10.0"

[[releases]]
version = "0.2.0"
date = "2026-01-01"
"""


class Client(security.Client):
    """Requests to the in-process app (``call``), and keys made straight in the store."""

    async def key(self, user: str, tier: str = "free", permissions: str = "manage") -> str:
        secret, _ = await create_key(self.gateway.store, "gw-", user=user, tier=tier,
                                     permissions=permissions)
        return secret


@asynccontextmanager
async def running(tmp: Path, extra: str = "", storage_url: str = "") -> AsyncIterator[Client]:
    """The app started on SQLite in ``tmp`` (or ``storage_url``), with ``extra`` config."""
    text = BASE.format(tmp=tmp, admin=ADMIN) + extra
    if storage_url:
        text = text.replace(f"sqlite:///{tmp}/gateway.db", storage_url)
    async with in_process(text) as (http, gateway):
        yield Client(http, gateway)
