"""SQL for accounts: users, sessions, reset tokens, balances, key policies, BYOK keys, settings.

Same rules as ``gateway.storage``: ``?`` placeholders in the subset SQLite and PostgreSQL share
(``INSERT … ON CONFLICT … DO UPDATE`` is in both), over any ``Database``. Nothing here is called
on the request path: ``gateway.accounts`` caches what requests need.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.storage import Database


@dataclass(slots=True)
class UserRecord:
    email: str
    id: str
    password_hash: str
    name: str = ""
    tier: str = "free"
    status: str = "active"  # active | blocked
    balance_usd: float = 0.0
    created_at: float = 0.0


@dataclass(slots=True)
class KeyPolicy:
    """Per-key limits on top of the tier's; 0 and empty mean "only the tier's"."""

    requests_per_minute: int = 0
    requests_per_day: int = 0
    allowed_models: tuple[str, ...] = ()


_USER_COLUMNS = "email, id, password_hash, name, tier, status, balance_usd, created_at"
USAGE_FIELDS = (
    "created_at",
    "provider",
    "model_served",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "status",
    "estimated",
)

RECENT_FIELDS = ("request_id", "created_at", "model_requested", "model_served", "provider",
                 "status", "latency_ms", "prompt_tokens", "completion_tokens", "cost_usd")


class AccountsStore:
    """The account tables over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- users ---

    async def insert_user(self, user: UserRecord) -> None:
        await self.db.execute(
            f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (user.email, user.id, user.password_hash, user.name, user.tier, user.status,
             user.balance_usd, user.created_at),
        )

    async def find_user(self, email: str) -> UserRecord | None:
        rows = await self.db.fetchall(
            f"SELECT {_USER_COLUMNS} FROM users WHERE email = ?", (email,)
        )
        return UserRecord(*rows[0]) if rows else None

    async def list_users(self) -> list[UserRecord]:
        rows = await self.db.fetchall(f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at")
        return [UserRecord(*row) for row in rows]

    async def set_user_field(self, email: str, field: str, value: Any) -> bool:
        if field not in ("tier", "status", "password_hash", "name"):
            raise ValueError(field)
        return await self.db.execute(
            f"UPDATE users SET {field} = ? WHERE email = ?", (value, email)
        ) > 0

    async def credit(self, email: str, amount: float, kind: str, note: str = "") -> bool:
        """Add ``amount`` (negative to take away) to a balance and write it to the ledger."""
        if not await self.db.execute(
            "UPDATE users SET balance_usd = balance_usd + ? WHERE email = ?", (amount, email)
        ):
            return False
        await self.db.execute(
            "INSERT INTO balance_ledger (id, user_email, created_at, amount_usd, kind, note) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ("txn_" + uuid.uuid4().hex[:16], email, time.time(), amount, kind, note),
        )
        return True

    async def debit_many(self, debits: dict[str, float]) -> None:
        """Spending of many users at once (the batched writer of ``gateway.accounts``)."""
        await self.db.executemany(
            "UPDATE users SET balance_usd = balance_usd - ? WHERE email = ?",
            [(amount, email) for email, amount in debits.items()],
        )

    async def ledger(self, email: str) -> list[tuple[float, float, str, str]]:
        rows = await self.db.fetchall(
            "SELECT created_at, amount_usd, kind, note FROM balance_ledger WHERE user_email = ? "
            "ORDER BY created_at",
            (email,),
        )
        return [(float(r[0]), float(r[1]), str(r[2]), str(r[3])) for r in rows]

    # --- sessions and reset tokens (only hashes are stored) ---

    async def insert_session(self, token_hash: str, email: str, ttl: float) -> str:
        session_id = "sess_" + uuid.uuid4().hex[:16]
        now = time.time()
        await self.db.execute(
            "INSERT INTO sessions (token_hash, id, user_email, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (token_hash, session_id, email, now, now + ttl),
        )
        return session_id

    async def find_session(self, token_hash: str) -> tuple[str, str] | None:
        """(session id, email) of a live session, or None."""
        rows = await self.db.fetchall(
            "SELECT id, user_email FROM sessions WHERE token_hash = ? AND revoked_at IS NULL "
            "AND expires_at > ?",
            (token_hash, time.time()),
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    async def revoke_session(self, session_id: str) -> None:
        await self.db.execute(
            "UPDATE sessions SET revoked_at = ? WHERE id = ?", (time.time(), session_id)
        )

    async def revoke_sessions_of(self, email: str) -> None:
        await self.db.execute(
            "UPDATE sessions SET revoked_at = ? WHERE user_email = ? AND revoked_at IS NULL",
            (time.time(), email),
        )

    async def insert_reset(self, token_hash: str, email: str, ttl: float) -> None:
        now = time.time()
        await self.db.execute(
            "INSERT INTO password_resets (token_hash, user_email, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (token_hash, email, now, now + ttl),
        )

    async def use_reset(self, token_hash: str) -> str | None:
        """Spend a reset token once; the email it was for, or None if unknown/used/expired."""
        now = time.time()
        used = await self.db.execute(
            "UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL "
            "AND expires_at > ?",
            (now, token_hash, now),
        )
        if not used:
            return None
        rows = await self.db.fetchall(
            "SELECT user_email FROM password_resets WHERE token_hash = ?", (token_hash,)
        )
        return str(rows[0][0]) if rows else None

    # --- per-key policies ---

    async def set_key_policy(self, key_id: str, policy: KeyPolicy) -> None:
        await self.db.execute(
            "INSERT INTO key_policies (key_id, requests_per_minute, requests_per_day, "
            "allowed_models) VALUES (?, ?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET "
            "requests_per_minute = excluded.requests_per_minute, "
            "requests_per_day = excluded.requests_per_day, "
            "allowed_models = excluded.allowed_models",
            (key_id, policy.requests_per_minute, policy.requests_per_day,
             ",".join(policy.allowed_models)),
        )

    async def key_policies(self, key_ids: Sequence[str]) -> dict[str, KeyPolicy]:
        if not key_ids:
            return {}
        marks = ", ".join("?" for _ in key_ids)
        rows = await self.db.fetchall(
            "SELECT key_id, requests_per_minute, requests_per_day, allowed_models "
            f"FROM key_policies WHERE key_id IN ({marks})",
            tuple(key_ids),
        )
        return {
            str(r[0]): KeyPolicy(int(r[1]), int(r[2]), tuple(m for m in str(r[3]).split(",") if m))
            for r in rows
        }

    # --- bring your own key ---

    async def set_provider_key(self, email: str, provider: str, secret: str, hint: str) -> None:
        await self.db.execute(
            "INSERT INTO provider_keys (user_email, provider, secret, hint, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_email, provider) DO UPDATE SET "
            "secret = excluded.secret, hint = excluded.hint, created_at = excluded.created_at",
            (email, provider, secret, hint, time.time()),
        )

    async def provider_keys(self, email: str) -> list[tuple[str, str, str, float]]:
        """(provider, encrypted secret, hint, created) for one user."""
        rows = await self.db.fetchall(
            "SELECT provider, secret, hint, created_at FROM provider_keys WHERE user_email = ? "
            "ORDER BY provider",
            (email,),
        )
        return [(str(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    async def delete_provider_key(self, email: str, provider: str) -> bool:
        return await self.db.execute(
            "DELETE FROM provider_keys WHERE user_email = ? AND provider = ?", (email, provider)
        ) > 0

    # --- settings ---

    async def get_setting(self, name: str) -> str | None:
        rows = await self.db.fetchall("SELECT value FROM settings WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    async def set_setting(self, name: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO settings (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # --- usage of one user, for the usage and billing API ---

    async def usage_since(self, email: str, since: float, until: float) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            f"SELECT {', '.join(USAGE_FIELDS)} FROM usage WHERE user_email = ? "
            "AND created_at >= ? AND created_at < ? ORDER BY created_at",
            (email, since, until),
        )
        return [dict(zip(USAGE_FIELDS, row, strict=True)) for row in rows]

    async def recent_usage(self, email: str, limit: int) -> list[dict[str, Any]]:
        """The user's newest ``limit`` rows, newest first, for the dashboard's request list."""
        rows = await self.db.fetchall(
            f"SELECT {', '.join(RECENT_FIELDS)} FROM usage WHERE user_email = ? "
            "ORDER BY created_at DESC LIMIT ?",
            (email, limit),
        )
        return [dict(zip(RECENT_FIELDS, row, strict=True)) for row in rows]

    async def usage_of_everyone(self, since: float, until: float) -> list[dict[str, Any]]:
        """Every user's rows over ``[since, until)``, with ``user_email``, for the admin."""
        fields = ("user_email", *USAGE_FIELDS)
        rows = await self.db.fetchall(
            f"SELECT {', '.join(fields)} FROM usage WHERE created_at >= ? AND created_at < ? "
            "ORDER BY created_at",
            (since, until),
        )
        return [dict(zip(fields, row, strict=True)) for row in rows]

    async def usage_row(self, email: str, request_id: str) -> dict[str, Any] | None:
        fields = ("request_id", *USAGE_FIELDS, "model_requested", "stream", "key_id")
        rows = await self.db.fetchall(
            f"SELECT {', '.join(fields)} FROM usage WHERE user_email = ? AND request_id = ?",
            (email, request_id),
        )
        return dict(zip(fields, rows[0], strict=True)) if rows else None
