"""Signup, email verification, login and password reset: everything that touches credentials.

- Signup is off unless ``accounts.signup``; each client address gets ``signups_per_hour``.
  A signup for an address that already owns keys made by the operator (``gateway keys create
  --user``, the admin API) must prove the address: it stays ``pending`` until the link sent
  there is used, and is refused when no notice can be delivered. With ``verify_email`` every
  signup works that way.
- Login counts the attempt before Argon2 runs (``gateway.accounts.throttle``), per address and
  per client, and the hashes run with bounded concurrency (``gateway.accounts.passwords``).
  A blocked user may log in, to see that they are blocked; a pending one may not.
- A password reset ends the sessions and revokes the account's ``manage`` keys.

Tokens are long random strings of which only the SHA-256 is stored; a reset token starts with
``gwreset_`` and a verification token with ``gwverify_``, so neither can stand for the other.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Awaitable, Callable

from gateway.accounts.keys import MANAGE
from gateway.accounts.notifier import Notifier
from gateway.accounts.passwords import PasswordHasher, check_email, check_password
from gateway.accounts.sessions import Sessions, token_hash
from gateway.accounts.throttle import AttemptWindow, Counters
from gateway.accounts.userstate import AccountCache
from gateway.config import GatewayConfig
from gateway.errors import AuthenticationFailed, BadRequest, PermissionDenied
from gateway.storage import AccountsStore, KeyRecord, StorageUnavailable, Store, UserRecord

RESET_PREFIX = "gwreset_"
VERIFY_PREFIX = "gwverify_"
Revoke = Callable[[KeyRecord], Awaitable[None]]


def _taken() -> BadRequest:
    return BadRequest(
        "An account with this email already exists: log in, or reset the password",
        param="email",
        code="email_taken",
    )


class Accounts:
    """Signup, verification, login, password reset."""

    def __init__(
        self,
        store: AccountsStore,
        keys: Store,
        config: GatewayConfig,
        cache: AccountCache,
        sessions: Sessions,
        notifier: Notifier,
        counters: Counters,
        revoke: Revoke,
    ) -> None:
        self.store = store
        self.keys = keys
        self.config = config
        self.cache = cache
        self.sessions = sessions
        self.notifier = notifier
        self.revoke = revoke
        accounts = config.accounts
        self.hasher = PasswordHasher(accounts.login_concurrency)
        lockout = accounts.login_lockout
        busy = ("Too many failed logins for this {whom}; retry in {{wait}} s "
                "or reset the password with POST /v1/auth/forgot")
        self.login_by_address = AttemptWindow(
            counters, "login", accounts.login_max_failures, lockout, busy.format(whom="address"))
        self.login_by_client = AttemptWindow(
            counters, "login", accounts.login_client_max_failures, lockout,
            busy.format(whom="client"))
        self.signups = AttemptWindow(
            counters, "signup", accounts.signups_per_hour, 3600.0,
            "Too many signups from this address; retry in {wait} s")
        self.resets = AttemptWindow(
            counters, "reset", accounts.resets_per_hour, 3600.0,
            "Too many reset requests; retry in {wait} s")

    # --- signup and verification ---

    async def signup(
        self, email: object, password: object, name: str, client: str
    ) -> UserRecord:
        """A new account: ``active``, or ``pending`` until its address is verified."""
        address, secret = check_email(email), check_password(password)
        await self.signups.take("c:" + client)
        await self.store.delete_pending_user(address, time.time() - self._verify_ttl)
        if await self.store.find_user(address) is not None:
            raise _taken()
        owned = [k for k in await self.keys.list_keys(address) if k.revoked_at is None]
        pending = self.config.accounts.verify_email or bool(owned)
        if pending and not self.notifier.delivers:
            raise PermissionDenied(
                "This address already has keys made by the operator, and this gateway cannot "
                "send a verification link: ask the operator",
                code="email_reserved",
            )
        user = UserRecord(
            email=address,
            id="user_" + uuid.uuid4().hex[:16],
            password_hash=await self.hasher.hash(secret),
            name=name[:200],
            # The operator's keys keep their tier once their owner's account exists.
            tier=owned[0].tier if owned else self._default_tier,
            status="pending" if pending else "active",
            created_at=time.time(),
        )
        try:
            await self.store.insert_user(user)
        except StorageUnavailable as exc:
            if await self.store.find_user(address) is not None:
                raise _taken() from exc
            raise
        self.cache.forget(address)
        if pending:
            token = VERIFY_PREFIX + secrets.token_urlsafe(32)
            await self.store.insert_reset(token_hash(token), address, self._verify_ttl)
            await self.notifier.notify("verify_email", address, token=token,
                                       how="POST /v1/auth/verify {\"token\": ...}")
        return user

    @property
    def _default_tier(self) -> str:
        return self.config.accounts.default_tier if self.config.tiers else "free"

    @property
    def _verify_ttl(self) -> float:
        return self.config.accounts.verify_token_ttl

    async def verify(self, token: object) -> UserRecord:
        """Use a verification token: the pending account becomes active."""
        email = await self._spend(token, VERIFY_PREFIX, "verification")
        await self.store.set_user_field(email, "status", "active")
        self.cache.forget(email)
        user = await self.store.find_user(email)
        assert user is not None
        return user

    async def _spend(self, token: object, prefix: str, what: str) -> str:
        if not isinstance(token, str) or not token:
            raise BadRequest(f"The {what} token is required", param="token")
        email = await self.store.use_reset(token_hash(token)) if token.startswith(prefix) else None
        if email is None:
            raise BadRequest(
                f"This {what} token is invalid, used or expired: ask for a new one",
                param="token",
                code=f"invalid_{'reset' if prefix == RESET_PREFIX else 'verification'}_token",
            )
        return email

    # --- login ---

    async def login(self, email: object, password: object, client: str) -> UserRecord:
        address = check_email(email)
        counted = await self.login_by_address.take("a:" + address)
        try:
            counted += await self.login_by_client.take("c:" + client)
            user = await self.store.find_user(address)
            ok = isinstance(password, str) and user is not None and await self.hasher.verify(
                user.password_hash, password
            )
        except BaseException:
            await self.login_by_address.give_back(counted)  # not checked: not counted
            raise
        if not ok or user is None:
            raise AuthenticationFailed("Wrong email or password", code="invalid_credentials")
        await self.login_by_address.give_back(counted)
        if user.status == "pending":
            raise PermissionDenied(
                "This account is not verified yet: use the link sent to its address",
                code="email_unverified",
            )
        return user

    # --- password reset ---

    async def forgot(self, email: object, client: str) -> None:
        address = check_email(email)
        await self.resets.take("a:" + address, "c:" + client)
        user = await self.store.find_user(address)
        if user is None or user.status == "pending":
            return  # same answer either way: no account enumeration
        token = RESET_PREFIX + secrets.token_urlsafe(32)
        ttl = self.config.accounts.reset_token_ttl
        await self.store.insert_reset(token_hash(token), address, ttl)
        await self.notifier.notify("password_reset", address, token=token)

    async def reset(self, token: object, password: object) -> tuple[str, list[str]]:
        """Set a new password: ends the sessions and revokes the ``manage`` keys, whose ids
        are answered with the email."""
        secret = check_password(password)
        email = await self._spend(token, RESET_PREFIX, "reset")
        await self.store.set_user_field(email, "password_hash", await self.hasher.hash(secret))
        await self.sessions.close_all(email)
        revoked = []
        for key in await self.keys.list_keys(email):
            if key.revoked_at is None and key.permissions == MANAGE:
                record = await self.keys.revoke_key(key.id, user=email)
                if record is not None:
                    await self.revoke(record)
                    revoked.append(record.id)
        self.cache.forget(email)
        return email, revoked
