"""API keys: minting, hashing, and the in-memory cache that keeps the database off the request path.

A key is ``<prefix><32 random url-safe characters>``; only its SHA-256 is stored (keys are
long random strings, so a fast hash is safe against guessing). The cache maps hashes to
principals for ``key_cache_ttl`` seconds; a revocation on this instance drops the entry at once.
When the database is down a cached key keeps working past its TTL, and an unknown key gets 503,
never 401.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.errors import AuthenticationFailed, ServiceUnavailable
from gateway.storage import KeyRecord, StorageUnavailable, Store

_NEGATIVE_TTL = 5.0  # seconds an unknown key is remembered, so a bad key cannot hammer the store
_MAX_NEGATIVE = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, its owner and their tier."""

    key_id: str
    user: str
    tier: str
    key_name: str = ""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def mint_key(prefix: str) -> tuple[str, KeyRecord]:
    """A new secret key and the record to store for it (which never holds the key itself)."""
    key = prefix + secrets.token_urlsafe(24)
    record = KeyRecord(
        id="key_" + uuid.uuid4().hex[:16],
        key_hash=hash_key(key),
        prefix=key[: len(prefix) + 6],
        created_at=time.time(),
    )
    return key, record


def key_from_headers(authorization: bytes | None, x_api_key: bytes | None) -> str | None:
    """The key from ``Authorization: Bearer …`` or ``x-api-key``, whichever is present."""
    if x_api_key:
        return x_api_key.decode("latin-1").strip()
    if authorization:
        scheme, _, value = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


class KeyCache:
    """Resolves keys to principals, asking the store only on a miss or after the TTL."""

    def __init__(
        self,
        store: Store,
        ttl: float,
        session_prefix: str = "",
        sessions: Callable[[str], Awaitable[Principal]] | None = None,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self._known: dict[str, tuple[Principal, float]] = {}
        self._unknown: dict[str, float] = {}
        # True while revocations from other instances may be missed (Redis down, fail closed):
        # every request then asks the store, and a cached entry serves only if it is down.
        self.strict = False
        # Session tokens (``gateway.accounts``): a prefix and the resolver for such tokens.
        self.session_prefix = session_prefix
        self.sessions = sessions

    async def authenticate(self, key: str | None) -> Principal:
        if not key:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
            )
        if self.sessions is not None and key.startswith(self.session_prefix):
            return await self.sessions(key)
        key_hash = hash_key(key)
        now = time.monotonic()
        cached = self._known.get(key_hash)
        if cached is not None and cached[1] > now and not self.strict:
            return cached[0]
        if self._unknown.get(key_hash, 0.0) > now:
            raise AuthenticationFailed("Invalid API key: check the key and the auth header")
        try:
            record = await self.store.find_key(key_hash)
        except StorageUnavailable as exc:
            if cached is not None:
                return cached[0]
            raise ServiceUnavailable(
                "The key store is unavailable; retry in a few seconds"
            ) from exc
        if record is None or record.revoked_at is not None:
            self._known.pop(key_hash, None)
            if len(self._unknown) >= _MAX_NEGATIVE:
                self._unknown.clear()
            self._unknown[key_hash] = now + _NEGATIVE_TTL
            if record is not None:
                raise AuthenticationFailed("This API key has been revoked: create a new one")
            raise AuthenticationFailed("Invalid API key: check the key and the auth header")
        principal = Principal(
            key_id=record.id, user=record.user, tier=record.tier, key_name=record.name
        )
        self._known[key_hash] = (principal, now + self.ttl)
        return principal

    def forget(self, key_hash: str) -> None:
        """Drop a key at once (after a revocation on this instance)."""
        self._known.pop(key_hash, None)

    def expire_all(self) -> None:
        """Recheck every cached key on its next use (revocations may have been missed while
        Redis was away); an entry still serves if the store is down then."""
        self._known = {h: (principal, 0.0) for h, (principal, _) in self._known.items()}


async def create_key(
    store: Store, prefix: str, *, name: str = "", user: str = "", tier: str = "free"
) -> tuple[str, KeyRecord]:
    """Mint and store a key; returns the secret (shown once) and its record."""
    key, record = mint_key(prefix)
    record.name, record.user, record.tier = name, user, tier
    await store.insert_key(record)
    return key, record
