"""Versioned migrations: the schema's history, applied in one transaction.

``MIGRATIONS`` is append-only: entry *n* upgrades a version *n-1* database to version *n*, and
``migrate`` applies the missing entries and records each in ``schema_version``, all in ONE
transaction (DDL is transactional on both engines): an upgrade that fails half-way leaves the
database as it was. On PostgreSQL the transaction first takes an advisory lock, and on SQLite it
starts with ``BEGIN IMMEDIATE``, so instances starting together apply each version once.

Why not Alembic: measured on this machine, importing it on top of SQLAlchemy costs 0.13-0.16 s
and 11.6 MB of memory in every process (each worker, each ``gateway keys`` command), for a
schema of nine tables whose history is a list of portable statements. The runner is the 30
lines below, it keeps the ``schema_version`` table that databases created before SQLAlchemy
already have, so they upgrade in place, and it needs no stamping step.

The entries are the history, written in the SQL both engines share; ``gateway.storage.tables``
is the schema as the last entry leaves it, and a test checks the two agree. To change the
schema, append an entry AND change the table there:

- Types: ``TEXT``, ``INTEGER``, ``BIGINT`` (anything that may pass 2**31), ``DOUBLE PRECISION``
  (times as Unix seconds, money in USD). No ``BOOLEAN`` (``INTEGER`` 0/1), no ``SERIAL``
  (ids are made by the application as TEXT), no ``JSON`` (TEXT), no ``NUMERIC``.
- Never edit or reorder an entry that has shipped. Data must survive:
  ``ALTER TABLE t ADD COLUMN c TYPE NOT NULL DEFAULT <constant>`` is fine on both; to change a
  column, add a new one (or a new table) and copy with ``UPDATE``/``INSERT … SELECT``. Index
  names are unique across the schema.
- An entry may also be a SQLAlchemy DDL construct (``CreateTable``, ``CreateIndex``) built from
  a table as it stood then; not from ``tables``, which moves on.
"""

from __future__ import annotations

from sqlalchemy import Executable, func, insert, select, text

from gateway.storage.database import Database
from gateway.storage.tables import schema_version

_MIGRATION_LOCK = 7_407_774_611  # pg_advisory_xact_lock id: one migrator at a time

MIGRATIONS: list[list[str | Executable]] = [
    [
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            user_email TEXT NOT NULL DEFAULT '',
            tier TEXT NOT NULL DEFAULT 'free',
            created_at DOUBLE PRECISION NOT NULL,
            last_used_at DOUBLE PRECISION,
            revoked_at DOUBLE PRECISION
        )""",
        "CREATE INDEX api_keys_user ON api_keys (user_email)",
        """CREATE TABLE usage (
            request_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            key_id TEXT NOT NULL DEFAULT '',
            user_email TEXT NOT NULL DEFAULT '',
            dialect TEXT NOT NULL DEFAULT '',
            model_requested TEXT NOT NULL DEFAULT '',
            model_served TEXT NOT NULL DEFAULT '',
            provider TEXT NOT NULL DEFAULT '',
            router TEXT NOT NULL DEFAULT '',
            stream INTEGER NOT NULL DEFAULT 0,
            prompt_tokens BIGINT NOT NULL DEFAULT 0,
            completion_tokens BIGINT NOT NULL DEFAULT 0,
            cached_tokens BIGINT NOT NULL DEFAULT 0,
            cache_creation_tokens BIGINT NOT NULL DEFAULT 0,
            reasoning_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            ttft_ms DOUBLE PRECISION,
            status INTEGER NOT NULL,
            error_type TEXT NOT NULL DEFAULT '',
            attempts INTEGER NOT NULL DEFAULT 1,
            fallback_level INTEGER NOT NULL DEFAULT 0,
            estimated INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX usage_key_time ON usage (key_id, created_at)",
        "CREATE INDEX usage_user_time ON usage (user_email, created_at)",
    ],
    # 2: accounts: users, sessions, reset tokens, balance top-ups, per-key limits, BYOK
    # provider keys, operator settings.
    [
        """CREATE TABLE users (
            email TEXT PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            tier TEXT NOT NULL DEFAULT 'free',
            status TEXT NOT NULL DEFAULT 'active',
            balance_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            user_email TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION
        )""",
        "CREATE INDEX sessions_user ON sessions (user_email)",
        """CREATE TABLE password_resets (
            token_hash TEXT PRIMARY KEY,
            user_email TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            used_at DOUBLE PRECISION
        )""",
        """CREATE TABLE balance_ledger (
            id TEXT PRIMARY KEY,
            user_email TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            amount_usd DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX balance_ledger_user_time ON balance_ledger (user_email, created_at)",
        """CREATE TABLE key_policies (
            key_id TEXT PRIMARY KEY,
            requests_per_minute INTEGER NOT NULL DEFAULT 0,
            requests_per_day INTEGER NOT NULL DEFAULT 0,
            allowed_models TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE provider_keys (
            user_email TEXT NOT NULL,
            provider TEXT NOT NULL,
            secret TEXT NOT NULL,
            hint TEXT NOT NULL DEFAULT '',
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (user_email, provider)
        )""",
        """CREATE TABLE settings (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
    ],
    # 3: requests answered from the response cache, billed at the cached rate.
    ["ALTER TABLE usage ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0"],
    # 4: the ledger's idempotency key (gateway.ledger).
    [
        "ALTER TABLE usage ADD COLUMN row_id TEXT",
        "CREATE UNIQUE INDEX usage_row_id ON usage (row_id)",
    ],
    # 5: key permissions (gateway.accounts.keys): "inference" or "manage"; keys made before
    # had every power, so they keep "manage".
    ["ALTER TABLE api_keys ADD COLUMN permissions TEXT NOT NULL DEFAULT 'manage'"],
    # 6: the platform APIs (gateway.platform): telemetry and signed webhooks.
    [
        """CREATE TABLE telemetry_events (
            created_at DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            instance_id TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL DEFAULT '',
            version TEXT NOT NULL DEFAULT '',
            os TEXT NOT NULL DEFAULT '',
            properties TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX telemetry_events_time ON telemetry_events (created_at)",
        """CREATE TABLE webhook_endpoints (
            id TEXT PRIMARY KEY,
            user_email TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            url TEXT NOT NULL,
            event_types TEXT NOT NULL DEFAULT '',
            secret TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL DEFAULT 'enabled',
            failures INTEGER NOT NULL DEFAULT 0,
            disabled_reason TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX webhook_endpoints_user ON webhook_endpoints (user_email)",
        """CREATE TABLE webhook_outbox (
            id TEXT PRIMARY KEY,
            endpoint_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'pending',
            lease_owner TEXT NOT NULL DEFAULT '',
            lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_attempt_at)",
        """CREATE TABLE webhook_attempts (
            delivery_id TEXT NOT NULL,
            endpoint_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            status_code INTEGER NOT NULL DEFAULT 0,
            duration_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            error TEXT NOT NULL DEFAULT '',
            success INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, created_at)",
    ],
    # 7: balance.low's threshold, set per webhook endpoint (gateway.platform.balance_watch).
    [
        "ALTER TABLE webhook_endpoints ADD COLUMN balance_low_usd DOUBLE PRECISION NOT NULL "
        "DEFAULT 0",
    ],
    # 8: model modes (routers.catalog.MODES): the operation of each usage row, and what image
    # and video models made (priced per image, per video, per second).
    [
        "ALTER TABLE usage ADD COLUMN operation TEXT NOT NULL DEFAULT 'chat'",
        "ALTER TABLE usage ADD COLUMN images INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE usage ADD COLUMN videos INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE usage ADD COLUMN video_seconds DOUBLE PRECISION NOT NULL DEFAULT 0",
    ],
    # 9: video generation jobs (gateway.video).
    [
        """CREATE TABLE video_jobs (
            id TEXT PRIMARY KEY,
            user_email TEXT NOT NULL,
            key_id TEXT NOT NULL DEFAULT '',
            request_id TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            served TEXT NOT NULL DEFAULT '',
            provider TEXT NOT NULL DEFAULT '',
            upstream_id TEXT NOT NULL DEFAULT '',
            prompt TEXT NOT NULL DEFAULT '',
            size TEXT NOT NULL DEFAULT '',
            seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'queued',
            progress INTEGER NOT NULL DEFAULT 0,
            error_code TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            file_ref TEXT NOT NULL DEFAULT '',
            created_at DOUBLE PRECISION NOT NULL,
            completed_at DOUBLE PRECISION,
            expires_at DOUBLE PRECISION NOT NULL,
            next_poll_at DOUBLE PRECISION NOT NULL,
            polls INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT NOT NULL DEFAULT '',
            lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            prepaid INTEGER NOT NULL DEFAULT 0,
            refunds TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX video_jobs_due ON video_jobs (status, next_poll_at)",
        "CREATE INDEX video_jobs_user ON video_jobs (user_email, created_at)",
    ],
    # 10: stored Responses API answers (gateway.responses): previous_response_id, GET/DELETE.
    [
        """CREATE TABLE stored_responses (
            owner TEXT NOT NULL,
            id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            key_id TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT '',
            response TEXT NOT NULL,
            input_items TEXT NOT NULL,
            PRIMARY KEY (owner, id)
        )""",
        "CREATE INDEX stored_responses_time ON stored_responses (created_at)",
    ],
]


async def migrate(db: Database) -> int:
    """Apply the missing migrations in one transaction; the schema version now in force."""
    async with db.write() as conn:
        if db.dialect == "postgresql":
            await conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        await conn.execute(
            text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        )
        current = (await conn.execute(select(func.max(schema_version.c.version)))).scalar() or 0
        for version, statements in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            for statement in statements:
                await conn.execute(text(statement) if isinstance(statement, str) else statement)
            await conn.execute(insert(schema_version).values(version=version))
            current = version
    return int(current)
