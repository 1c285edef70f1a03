"""Sessions: ``gwsess_…`` tokens from login, usable as Bearer, cached like API keys.

Only the SHA-256 of a token is stored. A session has both permissions (``inference`` and
``manage``): it is the account owner, who typed the password.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import partial

from gateway.accounts.keys import MANAGE, Principal
from gateway.accounts.ttl import TTLCache
from gateway.accounts.userstate import AccountCache
from gateway.config import AccountsConfig
from gateway.errors import AuthenticationFailed, ServiceUnavailable
from gateway.storage import AccountsStore, StorageUnavailable, UserRecord

SESSION_PREFIX = "gwsess_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Opens, resolves and ends sessions; resolved ones are cached for ``cache_ttl`` (and
    reread in the background, like keys)."""

    def __init__(self, store: AccountsStore, config: AccountsConfig, cache: AccountCache) -> None:
        self.store = store
        self.config = config
        self.cache = cache
        self.known: TTLCache[str, Principal] = TTLCache(config.cache_ttl)

    async def open(self, user: UserRecord) -> tuple[str, str]:
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        session_id = await self.store.insert_session(
            token_hash(token), user.email, self.config.session_ttl
        )
        return token, session_id

    async def authenticate(self, token: str) -> Principal:
        digest = token_hash(token)
        cached = self.known.get(digest)
        if cached is not None:
            return cached
        try:
            principal = await self.known.lookup(digest, partial(self._read, digest))
        except StorageUnavailable as exc:
            raise ServiceUnavailable("The session store is unavailable; retry shortly") from exc
        if principal is None:
            raise AuthenticationFailed("Invalid or expired session: log in again")
        return principal

    async def _read(self, digest: str) -> Principal | None:
        found = await self.store.find_session(digest)
        user = await self.store.find_user(found[1]) if found else None
        if found is None or user is None:
            return None
        return Principal(
            key_id=found[0], user=user.email, tier=user.tier, key_name="session",
            permissions=MANAGE,
        )

    async def close(self, principal: Principal) -> None:
        await self.store.revoke_session(principal.key_id)
        self.forget_session(principal.key_id)
        self.cache.announce("session " + principal.key_id)

    async def close_all(self, email: str) -> None:
        await self.store.revoke_sessions_of(email)
        self.forget_sessions_of(email)
        self.cache.announce("sessions " + email)

    def forget_session(self, session_id: str) -> None:
        self.known.drop_where(lambda known: known.key_id == session_id)

    def forget_sessions_of(self, email: str) -> None:
        self.known.drop_where(lambda known: known.user == email)
