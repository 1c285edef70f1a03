"""Redis round trips and commands of one admission and its settle, counted exactly.

``python -m bench.admission_trips [N [C]]``: the bench's tier (``bench/targets.py``: requests
per minute and per day, tokens per day and per month, credits per day) admitted and settled N
times in this process, C at a time (1: one request at a time, each settle's correction
carried by the next admission as in a server) after a warm-up, against a throwaway
``redis-server``
(``tests/services.py``; the machine's Redis is never touched). Redis's own counters give the
figures: ``total_reads_processed`` (one per round trip) and ``INFO commandstats``. It also
prints the client-side CPU per admit+settle, on Redis and on ``memory://``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import redis

from adapters.canonical import Usage
from bench.targets import _GATEWAY_TOML
from gateway.accounts.keys import Principal
from gateway.accounts.secretbox import SecretBox
from gateway.accounts.userstate import AccountCache
from gateway.admission import Admission, Limiter
from gateway.balances import LocalBalances
from gateway.config import parse_config
from gateway.redis_client import RedisClient
from gateway.storage import AccountsStore, open_store
from routers.catalog import Model

MODEL = Model(id="m", provider="p", upstream="m", credits=1)
# The bench gateway's tier and accounts sections (every limit on, none reached).
_FROM = _GATEWAY_TOML.index("[tiers.bench]")
TIER = _GATEWAY_TOML[_FROM:_GATEWAY_TOML.index("\n\n", _GATEWAY_TOML.index("[accounts]", _FROM))]


def _stats(client: redis.Redis) -> tuple[int, dict[str, int]]:
    reads = int(client.info("stats")["total_reads_processed"])
    commands = {name.removeprefix("cmdstat_"): int(value["calls"])
                for name, value in client.info("commandstats").items()}
    return reads, commands


async def _run(uri: str, shared: RedisClient | None, n: int, concurrency: int) -> float:
    store = await open_store("sqlite:///:memory:")
    config = parse_config(TIER)
    cache = AccountCache(AccountsStore(store.db), config, SecretBox(""), LocalBalances())
    admission = Admission(cache, Limiter(uri, redis=shared), 256)
    who = Principal(key_id="key_bench", user="bench@example.com", tier="bench")
    usage = Usage(input_tokens=20, output_tokens=16)
    for _ in range(5):  # warm: scripts loaded, connections open
        admission.settle(await admission.admit(who, MODEL, 80, None), MODEL, usage, 0.0)
        await asyncio.gather(*admission._tasks)

    async def client(count: int) -> None:
        for _ in range(count):
            admission.settle(await admission.admit(who, MODEL, 80, None), MODEL, usage, 0.0)

    started = time.process_time()
    await asyncio.gather(*(client(n // concurrency) for _ in range(concurrency)))
    await asyncio.gather(*admission._tasks)
    spent = time.process_time() - started
    await store.close()
    return spent / n * 1e6


def main(n: int, concurrency: int = 1) -> dict[str, Any]:
    from tests import services

    services.start_redis()
    client = redis.Redis.from_url(services.REDIS_URL)
    try:
        shared = RedisClient(services.REDIS_URL, "gwtrips:")
        before = _stats(client)
        redis_us = asyncio.run(_run(services.REDIS_URL, shared, n, concurrency))
        after = _stats(client)
        memory_us = asyncio.run(_run("memory://", None, n, concurrency))
    finally:
        for key in client.scan_iter("gwtrips:*"):
            client.delete(key)
        client.close()
        services.stop_redis()
    total = n + 5
    commands = {k: round((v - before[1].get(k, 0)) / total, 2)
                for k, v in after[1].items() if v - before[1].get(k, 0) > 0}
    commands.pop("info", None)
    return {
        "round_trips_per_request": round((after[0] - before[0] - 2) / total, 2),
        "commands_per_request": commands,
        "client_cpu_us_per_request": {"redis": round(redis_us), "memory": round(memory_us)},
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print(main(*args) if args else main(200))
