"""API keys: minting, hashing, permissions, and the cache that keeps the database off the
request path.

A key is ``<prefix><32 random url-safe characters>``; only its SHA-256 is stored (keys are
long random strings, so a fast hash is safe against guessing). The cache maps hashes to
principals for ``key_cache_ttl`` seconds, then serves them as long again while they are reread in
the background (so a known key never waits on the database); a revocation on this instance drops
the entry at once, and other instances hear of it through Redis. When the database is down a
cached key keeps working past its TTL, and an unknown key gets 503, never 401. A refused key is
remembered for a few seconds with the reason it was refused, so every worker keeps saying
"revoked" for a revoked key rather than "invalid" from its negative cache.

Permissions: ``inference`` (model endpoints and the key's own usage) and ``manage`` (keys,
provider keys, billing, webhooks; it includes ``inference``). Sessions from login have both.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from gateway.accounts.ttl import TTLCache
from gateway.errors import AuthenticationFailed, BadRequest, ServiceUnavailable
from gateway.storage import KeyRecord, StorageUnavailable, Store

INFERENCE = "inference"
MANAGE = "manage"
PERMISSIONS = (INFERENCE, MANAGE)
_REFUSED_TTL = 5.0  # seconds a refused key is remembered, so a bad key cannot hammer the store
_MISSING = (
    "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
)
_NOT_BEARER = (
    "The Authorization header must read 'Bearer <key>' (or send the key as 'x-api-key: <key>')"
)
_INVALID = "Invalid API key: check the key and the auth header"
_REVOKED = "This API key has been revoked: create a new one"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, its owner, their tier, and what the key may do."""

    key_id: str
    user: str
    tier: str
    key_name: str = ""
    permissions: str = MANAGE

    @property
    def can_manage(self) -> bool:
        return self.permissions == MANAGE

    @property
    def usage_owner(self) -> tuple[str, str]:
        """(user, key id) whose usage this caller may read: an ``inference`` key or a key of
        nobody's account sees only its own; the rest see their account's."""
        if self.user and self.can_manage:
            return self.user, ""
        return self.user, self.key_id


def parse_permissions(value: object) -> str:
    """``inference`` or ``manage`` (also spelled ``inference,manage``) from a caller."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names:
        raise BadRequest("'permissions' must be 'inference' or 'manage'", param="permissions")
    chosen = {str(name).strip() for name in names}
    if not chosen <= set(PERMISSIONS):
        raise BadRequest(
            f"Unknown permission in {sorted(chosen)}: use 'inference' or 'manage'",
            param="permissions",
        )
    return MANAGE if MANAGE in chosen else INFERENCE


def permission_list(permissions: str) -> list[str]:
    """How a key's permissions are shown: ``manage`` includes ``inference``."""
    return [INFERENCE, MANAGE] if permissions == MANAGE else [INFERENCE]


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
    """The key from ``Authorization: Bearer …`` or ``x-api-key``, whichever is present.

    An Authorization header in another form is refused by name: "Missing API key" would
    mislead someone who sent their key without the ``Bearer`` scheme."""
    if x_api_key:
        return x_api_key.decode("latin-1").strip()
    if authorization:
        scheme, _, value = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise AuthenticationFailed(_NOT_BEARER)
    return None


SessionResolver = Callable[[str], Awaitable[Principal]]
BlockCheck = Callable[[Principal], Awaitable[None]]


class KeyCache:
    """Resolves keys (and session tokens) to principals, asking the store only on a miss.

    ``sessions`` resolves tokens that start with ``session_prefix``; ``refuse_blocked`` raises
    for a principal whose account is blocked (cached, like everything here).
    """

    def __init__(
        self,
        store: Store,
        ttl: float,
        *,
        session_prefix: str = "",
        sessions: SessionResolver | None = None,
        refuse_blocked: BlockCheck | None = None,
    ) -> None:
        self.store = store
        self.known: TTLCache[str, Principal] = TTLCache(ttl)
        self._refused: TTLCache[str, str] = TTLCache(_REFUSED_TTL, max_entries=10_000)
        self.session_prefix = session_prefix
        self._sessions = sessions
        self._refuse_blocked = refuse_blocked

    @property
    def strict(self) -> bool:
        """True while revocations from other instances may be missed (Redis down, fail
        closed): every request then asks the store; a cached entry serves only if it is down."""
        return self.known.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self.known.strict = value

    async def authenticate(self, key: str | None, *, allow_blocked: bool = False) -> Principal:
        """The principal of ``key``; 403 for a blocked account unless ``allow_blocked``."""
        principal = await self.resolve(key)
        if principal.user and not allow_blocked and self._refuse_blocked is not None:
            await self._refuse_blocked(principal)
        return principal

    async def resolve(self, key: str | None) -> Principal:
        """The principal of ``key``, blocked or not: for a caller that refuses blocked
        accounts itself (admission does, on the request path)."""
        if not key:
            raise AuthenticationFailed(_MISSING)
        if self._sessions is not None and key.startswith(self.session_prefix):
            return await self._sessions(key)
        key_hash = hash_key(key)
        principal = self.known.get(key_hash)
        if principal is not None:
            return principal
        refused = self._refused.get(key_hash)
        if refused is not None:
            raise AuthenticationFailed(refused)
        try:
            # An expired entry is served while it is reread in the background (ttl.py).
            principal = await self.known.lookup(key_hash, partial(self._read, key_hash))
        except StorageUnavailable as exc:
            raise ServiceUnavailable(
                "The key store is unavailable; retry in a few seconds"
            ) from exc
        if principal is None:
            raise AuthenticationFailed(self._refused.get(key_hash) or _INVALID)
        return principal

    async def _read(self, key_hash: str) -> Principal | None:
        """The key's principal from the store; None, with the reason remembered, for a key
        that is unknown or revoked."""
        record = await self.store.find_key(key_hash)
        if record is None or record.revoked_at is not None:
            self._refused.put(key_hash, _INVALID if record is None else _REVOKED)
            return None
        return Principal(
            key_id=record.id,
            user=record.user,
            tier=record.tier,
            key_name=record.name,
            permissions=record.permissions,
        )

    def forget(self, key_hash: str) -> None:
        """Drop a key at once (after a revocation here or on another instance)."""
        self.known.pop(key_hash)
        self._refused.pop(key_hash)

    def expire_all(self) -> None:
        """Recheck every cached key on its next use (revocations may have been missed while
        Redis was away); an entry still serves if the store is down then."""
        self.known.expire_all()


async def create_key(
    store: Store,
    prefix: str,
    *,
    name: str = "",
    user: str = "",
    tier: str = "free",
    permissions: str = MANAGE,
) -> tuple[str, KeyRecord]:
    """Mint and store a key; returns the secret (shown once) and its record."""
    key, record = mint_key(prefix)
    record.name, record.user, record.tier = name, user, tier
    record.permissions = permissions
    await store.insert_key(record)
    return key, record
