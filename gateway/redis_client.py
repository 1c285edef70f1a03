"""The Redis client: state shared across workers and instances (``limits.storage = "redis://…"``).

``RedisClient`` owns one redis-py asyncio client (a connection pool) for the process, the key
prefix that namespaces everything this gateway writes (``limits.redis_prefix``), and the
failure policy (``limits.redis_failure``):

- ``"open"``: when Redis cannot be reached, features that depend on it degrade and requests go
  on (a revocation then reaches other instances within ``storage.key_cache_ttl``; the response
  cache is skipped).
- ``"closed"``: requests that need Redis are refused with 503, and API keys are checked against
  the database on every request while the invalidation channel is down.

Either way the transition is logged once (``redis_unavailable`` / ``redis_available``), not per
request. Building blocks for other features: ``key()`` for namespaced keys, ``call()`` to run a
command under the failure policy, ``publish``/``subscribe`` for broadcast channels.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from gateway.errors import ServiceUnavailable
from gateway.redis_pipe import Pipe

log = structlog.get_logger("gateway.redis")

T = TypeVar("T")
FailureMode = Literal["open", "closed"]
REVOCATIONS = "keys:revoked"  # channel: the SHA-256 of each revoked key
ACCOUNTS = "accounts"  # channel: "<origin> <change>", see gateway.accounts.AccountCache


class RedisUnavailable(Exception):
    """Redis could not be reached (and the failure policy is to carry on)."""


class RedisClient:
    """The process's Redis connection, key prefix and failure policy."""

    def __init__(
        self, url: str, prefix: str = "gw:", failure: FailureMode = "open", timeout: float = 1.0
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.failure = failure
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=15,
            # A pooled connection that died with a Redis restart is retried once, on a new one.
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[ConnectionError],
        )
        pool = self.client.connection_pool
        # The request path's scripts go through one pipelined connection (gateway.redis_pipe).
        self.pipe = (Pipe(pool.connection_kwargs, timeout)
                     if Pipe.supports(pool.connection_kwargs, pool.connection_class) else None)
        self.healthy = True
        self._tasks: list[asyncio.Task[None]] = []

    def key(self, name: str) -> str:
        return self.prefix + name

    def _down(self, error: BaseException) -> None:
        if self.healthy:
            self.healthy = False
            log.error(
                "redis_unavailable",
                url=_redact(self.url),
                error=str(error) or type(error).__name__,
                policy=f"fail {self.failure}",
            )

    def _up(self) -> None:
        if not self.healthy:
            self.healthy = True
            log.warning("redis_available", url=_redact(self.url))

    async def call(self, command: Callable[[], Awaitable[T]], what: str) -> T:
        """Run one Redis command; on failure raise 503 (closed) or RedisUnavailable (open)."""
        try:
            result = await command()
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            if self.failure == "closed":
                raise ServiceUnavailable(
                    f"The shared state store is unavailable ({what}); retry in a few seconds"
                ) from exc
            raise RedisUnavailable(what) from exc
        self._up()
        return result

    def script(self, lua: str) -> Callable[[list[str], list[Any]], Awaitable[Any]]:
        """A Lua script run atomically in Redis (EVALSHA, loaded on first use).

        For counters that must not race across instances (rate limits, quotas, reservations)::

            take = redis.script(TAKE_LUA)
            left = await redis.call(lambda: take([redis.key("rl:" + key_id)], [limit, 60]),
                                    "rate limits")
        """
        registered = self.client.register_script(lua)
        pipe = self.pipe
        if pipe is None:
            async def run_redis_py(keys: list[str], args: list[Any]) -> Any:
                return await registered(keys=keys, args=args)

            return run_redis_py
        sha = registered.sha

        async def run(keys: list[str], args: list[Any]) -> Any:
            command = ("EVALSHA", sha, len(keys), *keys, *args)
            try:
                return await _once_more(pipe, command)
            except NoScriptError:  # Redis restarted, or SCRIPT FLUSH: load it, then again
                await _once_more(pipe, ("SCRIPT", "LOAD", lua))
                return await _once_more(pipe, command)

        return run

    async def ping(self) -> bool:
        try:
            await self.client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            return False
        self._up()
        return True

    async def publish(self, channel: str, message: str) -> bool:
        """Broadcast to every instance; False when Redis is unreachable (already logged)."""
        try:
            await self.client.publish(self.key(channel), message)
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            return False
        self._up()
        return True

    def subscribe(
        self,
        channel: str,
        on_message: Callable[[str], None],
        on_connected: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        """Call ``on_message`` for every message on ``channel``, reconnecting for ever.

        ``on_connected`` runs at each (re)subscription, after which no message is missed;
        ``on_lost`` when the subscription breaks (messages may be missed until reconnected).
        """
        task = asyncio.create_task(
            self._listen(channel, on_message, on_connected, on_lost), name=f"redis-{channel}"
        )
        self._tasks.append(task)

    async def _listen(
        self,
        channel: str,
        on_message: Callable[[str], None],
        on_connected: Callable[[], None] | None,
        on_lost: Callable[[], None] | None,
    ) -> None:
        backoff = 0.2
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.key(channel))
                self._up()
                backoff = 0.2
                if on_connected is not None:
                    on_connected()
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        await pubsub.ping()  # notice a dead connection within seconds
                        continue
                    data = message.get("data")
                    if isinstance(data, bytes):
                        on_message(data.decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._down(exc)
                if on_lost is not None:
                    on_lost()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def close(self) -> None:
        if self.pipe is not None:
            self.pipe.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.client.aclose()


async def _once_more(pipe: Pipe, command: tuple[Any, ...]) -> Any:
    """A command on the pipe, sent again once on a new connection if the connection failed
    (as the redis-py client's ``Retry(NoBackoff(), 1)``)."""
    try:
        return await pipe.call(*command)
    except (ConnectionError, RedisTimeout):
        return await pipe.call(*command)


def _redact(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


async def announce_revocation(url: str, prefix: str, key_hash: str) -> bool:
    """Tell every instance to drop a revoked key now (for the CLI and admin endpoints).

    Returns False when Redis is unreachable; other instances then see the revocation when
    their cached entry expires (``storage.key_cache_ttl``).
    """
    redis = RedisClient(url, prefix)
    try:
        return await redis.publish(REVOCATIONS, key_hash)
    finally:
        await redis.close()
