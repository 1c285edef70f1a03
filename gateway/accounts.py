"""Accounts: users and their cached state, sessions, password resets, balances, BYOK, settings.

The request path reads only memory: ``AccountCache`` keeps each user's tier, status, balance and
provider keys for ``accounts.cache_ttl`` seconds (a change made on this instance drops the entry
at once), and the maintenance switch is refreshed by a background task. Balances are reserved
through ``gateway.balances`` (no ``await`` between check and reservation, so concurrent
requests cannot overspend); spending is queued and written in batches by ``DebitWriter``.

Passwords are hashed with Argon2id (memory-hard, ``argon2-cffi``) in a worker thread. Sessions
and reset tokens are long random strings of which only the SHA-256 is stored.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import msgspec
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

from gateway.auth import Principal
from gateway.balances import BalanceBook, LocalBalances
from gateway.config import AccountsConfig, GatewayConfig, TierConfig
from gateway.errors import AuthenticationFailed, BadRequest, RateLimited, ServiceUnavailable
from gateway.storage import AccountsStore, KeyPolicy, StorageUnavailable, UserRecord

log = structlog.get_logger("gateway.accounts")

SESSION_PREFIX = "gwsess_"
UNLIMITED = TierConfig(description="no limits (no tiers configured)")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < 8:
        raise BadRequest("Password must be at least 8 characters long", param="password")
    if len(password) > 1024:
        raise BadRequest("Password must be at most 1024 characters long", param="password")
    return password


def check_email(email: object) -> str:
    if not isinstance(email, str) or not _EMAIL.match(email.strip()) or len(email) > 254:
        raise BadRequest("A valid email address is required", param="email")
    return email.strip().lower()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


class SecretBox:
    """Encrypts provider keys at rest with a key derived from the server secret (Fernet)."""

    def __init__(self, secret: str) -> None:
        self._fernet = (
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))
            if secret
            else None
        )

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def seal(self, plaintext: str) -> str:
        assert self._fernet is not None
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str | None:
        if self._fernet is None:
            return None
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None


class Notifier:
    """Delivers notices (reset tokens): to a webhook as a JSON POST, or to the log.

    Without a webhook the notice, token included, is logged at WARNING under the event
    ``notify_deliver_by_log`` so an operator can hand it over; configure
    ``accounts.notify_webhook`` in production to keep tokens out of the logs.
    """

    def __init__(self, webhook: str) -> None:
        self.webhook = webhook
        self.sent: list[dict[str, str]] = []

    async def notify(self, kind: str, email: str, **fields: str) -> None:
        payload = {"kind": kind, "email": email, **fields}
        if not self.webhook:
            log.warning("notify_deliver_by_log", **payload)
            return
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                self.webhook, json=payload
            ) as response:
                if response.status >= 400:
                    log.error("notify_failed", kind=kind, email=email, status=response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("notify_failed", kind=kind, email=email, error=str(exc))


@dataclass(slots=True)
class UserState:
    """What the request path needs to know about one user."""

    email: str
    tier: str
    blocked: bool = False
    balance: float = 0.0  # as last read from the database
    registered: bool = False
    byok: dict[str, str] = field(default_factory=dict)  # provider -> decrypted key
    expires: float = 0.0
    generation: int = 0


class AccountCache:
    """Users' state, key policies and balances in memory; the database only on a miss."""

    def __init__(
        self,
        store: AccountsStore,
        config: GatewayConfig,
        box: SecretBox,
        balances: BalanceBook | None = None,
        broadcast: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.box = box
        self.ttl = config.accounts.cache_ttl
        self._users: dict[str, UserState] = {}
        self._policies: dict[str, tuple[KeyPolicy, float]] = {}
        self.balances: BalanceBook = balances or LocalBalances()
        self._generation = 0
        self.maintenance: str | None = None  # the operator's message while switched on
        # Tells the other instances about a change made here (``gateway.wiring``, via Redis):
        # "user <email>", "policy <key id>", "maintenance", "session <id>", "sessions <email>".
        self.broadcast = broadcast
        # While changes from other instances cannot arrive (Redis down, fail closed): no TTL.
        self.strict = False

    def tier(self, name: str) -> TierConfig:
        tiers = self.config.tiers
        if not tiers:
            return UNLIMITED
        return tiers.get(name) or tiers[self.config.accounts.default_tier]

    async def user(self, principal: Principal) -> UserState:
        state = self._users.get(principal.user)
        if state is not None and state.expires > time.monotonic() and not self.strict:
            return state
        try:
            fresh = await self._load(principal)
        except StorageUnavailable as exc:
            if state is not None:
                return state
            raise ServiceUnavailable("The account store is unavailable; retry shortly") from exc
        current = self._users.get(principal.user)
        if current is not None and fresh.generation != self._generation:
            # A debit was written while we read: keep the adjusted balance we have.
            fresh.balance = current.balance
        self._users[principal.user] = fresh
        return fresh

    async def _load(self, principal: Principal) -> UserState:
        generation = self._generation
        record = await self.store.find_user(principal.user) if principal.user else None
        state = UserState(
            email=principal.user,
            tier=principal.tier,
            expires=time.monotonic() + self.ttl,
            generation=generation,
        )
        if record is not None:
            state.tier, state.blocked = record.tier, record.status == "blocked"
            state.balance, state.registered = record.balance_usd, True
            if self.box.enabled:
                for provider, sealed, _, _ in await self.store.provider_keys(record.email):
                    key = self.box.open(sealed)
                    if key:
                        state.byok[provider] = key
        return state

    async def policy(self, key_id: str) -> KeyPolicy:
        cached = self._policies.get(key_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now and not self.strict:
            return cached[0]
        try:
            policy = (await self.store.key_policies([key_id])).get(key_id, KeyPolicy())
        except StorageUnavailable:
            return cached[0] if cached else KeyPolicy()
        self._policies[key_id] = (policy, now + self.ttl)
        return policy

    def forget(self, email: str, announce: bool = True) -> None:
        """Drop a user's cached state at once (after a change), here and on other instances."""
        self._users.pop(email, None)
        if announce:
            self.announce("user " + email)

    def forget_all(self) -> None:
        self._users.clear()
        self._policies.clear()

    def forget_policy(self, key_id: str, announce: bool = True) -> None:
        self._policies.pop(key_id, None)
        if announce:
            self.announce("policy " + key_id)

    def announce(self, change: str) -> None:
        if self.broadcast is not None:
            self.broadcast(change)

    async def credited(self, email: str, amount: float) -> None:
        """A top-up was written to the database: the shared balance follows at once."""
        await self.balances.credit(email, amount)

    # --- balances (``gateway.balances``) ---

    def available(self, state: UserState) -> float:
        return self.balances.available(state.email, state.balance)

    async def current_balance(self, state: UserState) -> float:
        """The balance available now, as every instance sees it (for ``/v1/auth/me``)."""
        return await self.balances.current(state.email, state.balance)

    async def reserve(self, state: UserState, amount: float) -> str | None:
        """Where the reservation was made ("local", "shared"), None when refused."""
        return await self.balances.reserve(state.email, state.balance, amount)

    def written(self, debits: dict[str, float]) -> None:
        """Debits reached the database: move them from pending into the cached balances."""
        self._generation += 1
        self.balances.written(debits)
        for email, amount in debits.items():
            state = self._users.get(email)
            if state is not None:
                state.balance -= amount


class DebitWriter:
    """Writes queued spending to the users' balances in batches, and refreshes maintenance."""

    def __init__(self, cache: AccountCache, interval: float = 0.5) -> None:
        self.cache = cache
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="debit-writer")

    async def _run(self) -> None:
        last_settings = 0.0
        while not self._closing:
            await asyncio.sleep(self.interval)
            await self.flush()
            if time.monotonic() - last_settings >= self.cache.ttl:
                last_settings = time.monotonic()
                with contextlib.suppress(StorageUnavailable):
                    await refresh_maintenance(self.cache)

    async def flush(self) -> None:
        balances = self.cache.balances
        debits = balances.take_pending()
        if not debits:
            balances.write_ended()  # nothing to write: no write under way any more
            return
        try:
            await self.cache.store.debit_many(debits)
        except BaseException as exc:
            balances.write_ended()
            if isinstance(exc, StorageUnavailable):
                log.warning("debit_write_ended", error=str(exc), users=len(debits))
                return
            raise
        self.cache.written(debits)

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


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


class Sessions:
    """Session tokens (``gwsess_…``) usable as Bearer, cached like API keys."""

    def __init__(self, store: AccountsStore, config: AccountsConfig, cache: AccountCache) -> None:
        self.store = store
        self.config = config
        self.cache = cache
        self._known: dict[str, tuple[Principal, float]] = {}

    async def open(self, user: UserRecord) -> tuple[str, str]:
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        session_id = await self.store.insert_session(
            token_hash(token), user.email, self.config.session_ttl
        )
        return token, session_id

    async def authenticate(self, token: str) -> Principal:
        digest = token_hash(token)
        now = time.monotonic()
        cached = self._known.get(digest)
        if cached is not None and cached[1] > now and not self.cache.strict:
            return cached[0]
        try:
            found = await self.store.find_session(digest)
            user = await self.store.find_user(found[1]) if found else None
        except StorageUnavailable as exc:
            if cached is not None:
                return cached[0]
            raise ServiceUnavailable("The session store is unavailable; retry shortly") from exc
        if found is None or user is None:
            self._known.pop(digest, None)
            raise AuthenticationFailed("Invalid or expired session: log in again")
        principal = Principal(key_id=found[0], user=user.email, tier=user.tier, key_name="session")
        self._known[digest] = (principal, now + self.cache.ttl)
        return principal

    async def close(self, principal: Principal) -> None:
        await self.store.revoke_session(principal.key_id)
        self.forget_session(principal.key_id)
        self.cache.announce("session " + principal.key_id)

    async def close_all(self, email: str) -> None:
        await self.store.revoke_sessions_of(email)
        self.forget_sessions_of(email)
        self.cache.announce("sessions " + email)

    def forget_session(self, session_id: str) -> None:
        for digest, (known, _) in list(self._known.items()):
            if known.key_id == session_id:
                del self._known[digest]

    def forget_sessions_of(self, email: str) -> None:
        for digest, (known, _) in list(self._known.items()):
            if known.user == email:
                del self._known[digest]


class LoginThrottle:
    """Refuses logins to an address after repeated failures, for ``login_lockout`` seconds."""

    def __init__(self, max_failures: int, lockout: float) -> None:
        self.max_failures = max_failures
        self.lockout = lockout
        self._failures: dict[str, tuple[int, float]] = {}

    def check(self, email: str) -> None:
        count, since = self._failures.get(email, (0, 0.0))
        wait = since + self.lockout - time.monotonic()
        if count >= self.max_failures and wait > 0:
            raise RateLimited(
                f"Too many failed logins for this address; retry in {int(wait) + 1} s "
                "or reset the password with POST /v1/auth/forgot",
                code="login_throttled",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        if count >= self.max_failures:
            self._failures.pop(email, None)

    def failed(self, email: str) -> None:
        count, since = self._failures.get(email, (0, time.monotonic()))
        self._failures[email] = (count + 1, since if count else time.monotonic())
        if len(self._failures) > 100_000:
            self._failures.clear()

    def succeeded(self, email: str) -> None:
        self._failures.pop(email, None)


class Accounts:
    """Signup, login, password reset: everything that touches a user's credentials."""

    def __init__(
        self,
        store: AccountsStore,
        config: GatewayConfig,
        cache: AccountCache,
        sessions: Sessions,
        notifier: Notifier,
    ) -> None:
        self.store = store
        self.config = config
        self.cache = cache
        self.sessions = sessions
        self.notifier = notifier
        self.throttle = LoginThrottle(
            config.accounts.login_max_failures, config.accounts.login_lockout
        )

    async def signup(self, email: object, password: object, name: str = "") -> UserRecord:
        address, secret = check_email(email), check_password(password)
        if await self.store.find_user(address) is not None:
            raise BadRequest(
                "An account with this email already exists: log in, or reset the password",
                param="email",
                code="email_taken",
            )
        user = UserRecord(
            email=address,
            id="user_" + uuid.uuid4().hex[:16],
            password_hash=await hash_password(secret),
            name=name[:200],
            tier=self.config.accounts.default_tier if self.config.tiers else "free",
            created_at=time.time(),
        )
        try:
            await self.store.insert_user(user)
        except StorageUnavailable as exc:
            if await self.store.find_user(address) is not None:
                raise BadRequest(
                    "An account with this email already exists", param="email", code="email_taken"
                ) from exc
            raise
        self.cache.forget(address)
        return user

    async def login(self, email: object, password: object) -> UserRecord:
        address = check_email(email)
        self.throttle.check(address)
        user = await self.store.find_user(address)
        ok = isinstance(password, str) and user is not None and await verify_password(
            user.password_hash, password
        )
        if not ok or user is None:
            self.throttle.failed(address)
            raise AuthenticationFailed("Wrong email or password", code="invalid_credentials")
        self.throttle.succeeded(address)
        return user

    async def forgot(self, email: object) -> None:
        address = check_email(email)
        if await self.store.find_user(address) is None:
            return  # same answer either way: no account enumeration
        token = "gwreset_" + secrets.token_urlsafe(32)
        ttl = self.config.accounts.reset_token_ttl
        await self.store.insert_reset(token_hash(token), address, ttl)
        await self.notifier.notify("password_reset", address, token=token)

    async def reset(self, token: object, password: object) -> str:
        secret = check_password(password)
        if not isinstance(token, str) or not token:
            raise BadRequest("The reset token is required", param="token")
        email = await self.store.use_reset(token_hash(token))
        if email is None:
            raise BadRequest(
                "This reset token is invalid, used or expired: ask for a new one",
                param="token",
                code="invalid_reset_token",
            )
        await self.store.set_user_field(email, "password_hash", await hash_password(secret))
        await self.sessions.close_all(email)
        self.throttle.succeeded(email)
        return email
