"""The account tables: users, sessions, reset tokens, balances, key policies, BYOK keys,
settings, and one user's view of the usage table.

Nothing here is called on the request path: ``gateway.accounts`` caches what requests need.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.storage.database import Database
from gateway.storage.records import KeyPolicy, UserRecord
from gateway.storage.tables import (
    balance_ledger,
    key_policies,
    password_resets,
    provider_keys,
    sessions,
    settings,
    usage,
    users,
)

_USER_FIELDS = frozenset(("tier", "status", "password_hash", "name"))
_RECENT_FIELDS = ("request_id", "created_at", "operation", "model_requested", "model_served",
                  "provider", "status", "latency_ms", "prompt_tokens", "completion_tokens",
                  "cost_usd")
_DETAIL_FIELDS = (
    "request_id", "created_at", "operation", "provider", "model_served", "prompt_tokens",
    "completion_tokens", "cached_tokens", "images", "videos", "video_seconds", "cost_usd",
    "status", "estimated", "model_requested", "stream", "key_id",
)


def _mine(email: str, key_id: str) -> ColumnElement[bool]:
    """One user's usage rows; one key's only, when ``key_id`` is given."""
    if key_id:
        return and_(usage.c.user == email, usage.c.key_id == key_id)
    return usage.c.user == email


class AccountsStore:
    """The account tables over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._upsert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        # The reads behind the request path's account cache, compiled once (Database.rows).
        self._find_user = db.prepare(select(users).where(users.c.email == bindparam("email")))
        self._policy = db.prepare(
            select(key_policies).where(key_policies.c.key_id == bindparam("key_id"))
        )
        t = provider_keys.c
        self._provider_keys = db.prepare(
            select(t.provider, t.secret, t.hint, t.created_at)
            .where(t.user_email == bindparam("email"))
            .order_by(t.provider)
        )
        self._debit = (
            update(users)
            .where(users.c.email == bindparam("b_email"))
            .values(balance_usd=users.c.balance_usd - bindparam("b_amount"))
        )

    # --- users ---

    async def insert_user(self, user: UserRecord) -> None:
        values = {column.key: getattr(user, column.key) for column in users.c}
        await self.db.execute(insert(users).values(values))

    async def find_user(self, email: str) -> UserRecord | None:
        rows = await self.db.rows(self._find_user, email=email)
        return UserRecord(**rows[0]) if rows else None

    async def delete_pending_user(self, email: str, created_before: float) -> None:
        """Forget a signup whose verification link expired unused (the address is free again)."""
        t = users.c
        await self.db.execute(delete(users).where(
            t.email == email, t.status == "pending", t.created_at < created_before
        ))

    async def list_users(self) -> list[UserRecord]:
        rows = await self.db.fetch(select(users).order_by(users.c.created_at))
        return [UserRecord(**row._mapping) for row in rows]

    async def set_user_field(self, email: str, field: str, value: Any) -> bool:
        if field not in _USER_FIELDS:
            raise ValueError(field)
        changed = await self.db.execute(
            update(users).where(users.c.email == email).values({field: value})
        )
        return changed > 0

    async def credit(self, email: str, amount: float, kind: str, note: str = "") -> bool:
        """Add ``amount`` (negative to take away) to a balance and write it to the ledger, in
        one transaction: both or neither."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(users)
                .where(users.c.email == email)
                .values(balance_usd=users.c.balance_usd + amount)
            )
            if not result.rowcount:
                return False
            await conn.execute(insert(balance_ledger).values(
                id="txn_" + uuid.uuid4().hex[:16], user_email=email, created_at=time.time(),
                amount_usd=amount, kind=kind, note=note,
            ))
        return True

    async def debit_many(self, debits: dict[str, float]) -> None:
        """Spending of many users at once (the batched writer of ``gateway.accounts``)."""
        if not debits:
            return
        params = [{"b_email": email, "b_amount": amount} for email, amount in debits.items()]
        async with self.db.write() as conn:
            await conn.execute(self._debit, params)

    # --- sessions and reset tokens (only hashes are stored) ---

    async def insert_session(self, token_hash: str, email: str, ttl: float) -> str:
        session_id = "sess_" + uuid.uuid4().hex[:16]
        now = time.time()
        await self.db.execute(insert(sessions).values(
            token_hash=token_hash, id=session_id, user_email=email, created_at=now,
            expires_at=now + ttl,
        ))
        return session_id

    async def find_session(self, token_hash: str) -> tuple[str, str] | None:
        """(session id, email) of a live session, or None."""
        t = sessions.c
        rows = await self.db.fetch(
            select(t.id, t.user_email).where(
                t.token_hash == token_hash, t.revoked_at.is_(None), t.expires_at > time.time()
            )
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    async def revoke_session(self, session_id: str) -> None:
        await self.db.execute(
            update(sessions).where(sessions.c.id == session_id).values(revoked_at=time.time())
        )

    async def revoke_sessions_of(self, email: str) -> None:
        await self.db.execute(
            update(sessions)
            .where(sessions.c.user_email == email, sessions.c.revoked_at.is_(None))
            .values(revoked_at=time.time())
        )

    async def insert_reset(self, token_hash: str, email: str, ttl: float) -> None:
        now = time.time()
        await self.db.execute(insert(password_resets).values(
            token_hash=token_hash, user_email=email, created_at=now, expires_at=now + ttl,
        ))

    async def use_reset(self, token_hash: str) -> str | None:
        """Spend a reset token once; the email it was for, or None if unknown/used/expired."""
        now = time.time()
        t = password_resets.c
        async with self.db.write() as conn:
            used = await conn.execute(
                update(password_resets)
                .where(t.token_hash == token_hash, t.used_at.is_(None), t.expires_at > now)
                .values(used_at=now)
            )
            if not used.rowcount:
                return None
            row = (await conn.execute(
                select(t.user_email).where(t.token_hash == token_hash)
            )).first()
        return str(row[0]) if row else None

    # --- per-key policies ---

    async def set_key_policy(self, key_id: str, policy: KeyPolicy) -> None:
        statement = self._upsert(key_policies).values(
            key_id=key_id, requests_per_minute=policy.requests_per_minute,
            requests_per_day=policy.requests_per_day,
            allowed_models=",".join(policy.allowed_models),
        )
        await self.db.execute(statement.on_conflict_do_update(
            index_elements=[key_policies.c.key_id],
            set_={name: statement.excluded[name] for name in
                  ("requests_per_minute", "requests_per_day", "allowed_models")},
        ))

    async def key_policies(self, key_ids: Sequence[str]) -> dict[str, KeyPolicy]:
        if not key_ids:
            return {}
        if len(key_ids) == 1:  # the account cache's read, on the request path
            rows = await self.db.rows(self._policy, key_id=key_ids[0])
        else:
            found = await self.db.fetch(
                select(key_policies).where(key_policies.c.key_id.in_(list(key_ids)))
            )
            rows = [dict(row._mapping) for row in found]
        return {
            str(r["key_id"]): KeyPolicy(
                int(r["requests_per_minute"]), int(r["requests_per_day"]),
                tuple(m for m in str(r["allowed_models"]).split(",") if m),
            )
            for r in rows
        }

    # --- bring your own key ---

    async def set_provider_key(self, email: str, provider: str, secret: str, hint: str) -> None:
        statement = self._upsert(provider_keys).values(
            user_email=email, provider=provider, secret=secret, hint=hint, created_at=time.time()
        )
        await self.db.execute(statement.on_conflict_do_update(
            index_elements=[provider_keys.c.user_email, provider_keys.c.provider],
            set_={name: statement.excluded[name] for name in ("secret", "hint", "created_at")},
        ))

    async def provider_keys(self, email: str) -> list[tuple[str, str, str, float]]:
        """(provider, encrypted secret, hint, created) for one user."""
        rows = await self.db.rows(self._provider_keys, email=email)
        return [(str(r["provider"]), str(r["secret"]), str(r["hint"]), float(r["created_at"]))
                for r in rows]

    async def delete_provider_key(self, email: str, provider: str) -> bool:
        t = provider_keys.c
        changed = await self.db.execute(
            delete(provider_keys).where(t.user_email == email, t.provider == provider)
        )
        return changed > 0

    # --- settings ---

    async def get_setting(self, name: str) -> str | None:
        rows = await self.db.fetch(select(settings.c.value).where(settings.c.name == name))
        return str(rows[0][0]) if rows else None

    async def setting_once(self, name: str, value: str) -> str:
        """Store ``value`` unless the setting exists; answers the value in force (instances
        starting together agree on the first one written)."""
        await self.db.execute(
            self._upsert(settings).values(name=name, value=value).on_conflict_do_nothing(
                index_elements=[settings.c.name]
            )
        )
        return await self.get_setting(name) or value

    async def set_setting(self, name: str, value: str) -> None:
        statement = self._upsert(settings).values(name=name, value=value)
        await self.db.execute(statement.on_conflict_do_update(
            index_elements=[settings.c.name], set_={"value": statement.excluded.value}
        ))

    # --- one user's requests, for the usage API and the dashboard ---

    async def recent_usage(
        self, email: str, limit: int, key_id: str = ""
    ) -> list[dict[str, Any]]:
        """The user's newest ``limit`` rows (one key's only, when ``key_id`` is given), newest
        first, for the dashboard's request list."""
        rows = await self.db.fetch(
            select(*(usage.c[name] for name in _RECENT_FIELDS))
            .where(_mine(email, key_id))
            .order_by(usage.c.created_at.desc())
            .limit(limit)
        )
        return [dict(row._mapping) for row in rows]

    async def usage_row(
        self, email: str, request_id: str, key_id: str = ""
    ) -> dict[str, Any] | None:
        """One request of this user (of this key, when ``key_id`` is given)."""
        rows = await self.db.fetch(
            select(*(usage.c[name] for name in _DETAIL_FIELDS))
            .where(_mine(email, key_id), usage.c.request_id == request_id)
        )
        if not rows:
            return None
        # The API has always shown the flags as the 0/1 they are stored as.
        return {k: int(v) if isinstance(v, bool) else v for k, v in rows[0]._mapping.items()}
