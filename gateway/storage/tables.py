"""Every table of the gateway, declared once: what the queries, the records and the schema check
are built from.

Types are the portable subset both engines map the same way (``Float`` is ``DOUBLE PRECISION``
on PostgreSQL and ``REAL`` on SQLite; ``BigInteger`` for token counts that may pass 2**31;
booleans are ``Integer`` 0/1 as the first schema stored them). A column whose Python name differs
from its SQL name says so with ``key``: records and rows then match by name
(``UsageRow.user`` is ``usage.user_email``).

This is the schema as the latest migration leaves it (``gateway.storage.migrations``); a test
checks that a database migrated from version 1 has exactly these columns.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()


class Flag(TypeDecorator[bool]):
    """A boolean stored as INTEGER 0/1 (the first schema's portable choice; asyncpg refuses a
    Python bool for an integer parameter)."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else int(value)

    def process_result_value(self, value: Any, dialect: Any) -> bool | None:
        return None if value is None else bool(value)


def _text(name: str, default: str = "", **options: object) -> Column[str]:
    """A ``TEXT NOT NULL DEFAULT ''`` column (most of the schema)."""
    return Column(name, Text, nullable=False, server_default=default, **options)  # type: ignore[arg-type]


def _int(name: str, type_: Any = Integer, default: int = 0) -> Column[Any]:
    """An ``INTEGER``/``BIGINT`` (or ``Flag``) ``NOT NULL DEFAULT <default>`` column."""
    return Column(name, type_, nullable=False, server_default=str(default))


api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Text, primary_key=True),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False),
    _text("name"),
    _text("user_email", key="user"),
    _text("tier", "free"),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
    _text("permissions", "manage"),  # "inference" or "manage" (gateway.accounts.keys)
    Index("api_keys_user", "user"),
)

usage = Table(
    "usage",
    metadata,
    Column("request_id", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    _text("key_id"),
    _text("user_email", key="user"),
    _text("dialect"),
    _text("model_requested"),
    _text("model_served"),
    _text("provider"),
    _text("router"),
    _int("stream", Flag),
    _int("prompt_tokens", BigInteger),
    _int("completion_tokens", BigInteger),
    _int("cached_tokens", BigInteger),
    _int("cache_creation_tokens", BigInteger),
    _int("reasoning_tokens", BigInteger),
    Column("cost_usd", Float, nullable=False, server_default="0"),
    Column("latency_ms", Float, nullable=False, server_default="0"),
    Column("ttft_ms", Float),
    Column("status", Integer, nullable=False),
    _text("error_type"),
    _int("attempts", default=1),
    _int("fallback_level"),
    _int("estimated", Flag),
    _int("cache_hit", Flag),
    _text("operation", "chat"),
    _int("images"),
    _int("videos"),
    Column("video_seconds", Float, nullable=False, server_default="0"),
    # Set by the ledger once per row and kept across retries: a batch whose commit was
    # acknowledged too late (the connection died) is written again without duplicates.
    Column("row_id", Text),
    Index("usage_key_time", "key_id", "created_at"),
    Index("usage_user_time", "user", "created_at"),
    Index("usage_row_id", "row_id", unique=True),
)

users = Table(
    "users",
    metadata,
    Column("email", Text, primary_key=True),
    Column("id", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    _text("name"),
    _text("tier", "free"),
    _text("status", "active"),
    Column("balance_usd", Float, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("id", Text, nullable=False, unique=True),
    Column("user_email", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float),
    Index("sessions_user", "user_email"),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("user_email", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
)

balance_ledger = Table(
    "balance_ledger",
    metadata,
    Column("id", Text, primary_key=True),
    Column("user_email", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("amount_usd", Float, nullable=False),
    Column("kind", Text, nullable=False),
    _text("note"),
    Index("balance_ledger_user_time", "user_email", "created_at"),
)

key_policies = Table(
    "key_policies",
    metadata,
    Column("key_id", Text, primary_key=True),
    _int("requests_per_minute"),
    _int("requests_per_day"),
    _text("allowed_models"),  # comma-separated
)

provider_keys = Table(
    "provider_keys",
    metadata,
    Column("user_email", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("secret", Text, nullable=False),  # sealed by gateway.accounts' SecretBox
    _text("hint"),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("user_email", "provider"),
)

settings = Table(
    "settings",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

# Anonymous CLI telemetry (gateway.platform.telemetry); rows older than the retention go.
telemetry_events = Table(
    "telemetry_events",
    metadata,
    Column("created_at", Float, nullable=False),
    Column("kind", Text, nullable=False),  # "ping" or "event"
    _text("instance_id"),
    _text("name"),
    _text("version"),
    _text("os"),
    _text("properties"),  # JSON
    Index("telemetry_events_time", "created_at"),
)

# Signed webhooks (gateway.platform): endpoints, the durable outbox, each delivery attempt.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Text, primary_key=True),
    Column("user_email", Text, nullable=False),
    _text("name"),
    Column("url", Text, nullable=False),
    _text("event_types"),  # comma-separated
    Column("secret", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    _text("status", "enabled"),  # "enabled" or "disabled"
    _int("failures"),  # failed attempts in a row
    _text("disabled_reason"),
    # balance.low when the owner's prepaid balance is under this (USD; 0: never).
    Column("balance_low_usd", Float, nullable=False, server_default="0"),
    Index("webhook_endpoints_user", "user_email"),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Text, primary_key=True),  # the webhook-id header, the same on every retry
    Column("endpoint_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    _int("attempts"),
    _text("status", "pending"),  # pending, delivered, failed
    _text("lease_owner"),
    Column("lease_until", Float, nullable=False, server_default="0"),
    Index("webhook_outbox_due", "status", "next_attempt_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("delivery_id", Text, nullable=False),
    Column("endpoint_id", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    _int("status_code"),  # 0: no answer
    Column("duration_ms", Float, nullable=False, server_default="0"),
    _text("error"),
    _int("success", Flag),
    Index("webhook_attempts_endpoint", "endpoint_id", "created_at"),
)

# Video generation jobs (gateway.video): one row per job, polled by one instance at a time
# under a lease, billed once when it ends (the usage row is written with its last update).
video_jobs = Table(
    "video_jobs",
    metadata,
    Column("id", Text, primary_key=True),  # video_…, what callers see
    Column("user_email", Text, nullable=False),
    _text("key_id"),
    _text("request_id"),
    _text("model"),  # as requested
    _text("served"),  # the deployment that took the job
    _text("provider"),
    _text("upstream_id"),  # the provider's job id: never shown to callers
    _text("prompt"),
    _text("size"),
    Column("seconds", Float, nullable=False, server_default="0"),
    _text("status", "queued"),  # queued, in_progress, completed, failed
    _int("progress"),
    _text("error_code"),
    _text("error"),  # the upstream's reason, shown to the caller
    _text("file_ref"),  # what the provider's download needs (MiniMax: file_id); never shown
    Column("created_at", Float, nullable=False),
    Column("completed_at", Float),
    Column("expires_at", Float, nullable=False),  # polling gives up after this
    Column("next_poll_at", Float, nullable=False),
    _int("polls"),
    _text("lease_owner"),
    Column("lease_until", Float, nullable=False, server_default="0"),
    Column("cost_usd", Float, nullable=False, server_default="0"),
    _int("prepaid", Flag),  # the owner's tier draws a balance down: the cost is spent from it
    _text("refunds"),  # credit counters to give back if the job fails: "key amount until;…"
    Index("video_jobs_due", "status", "next_poll_at"),
    Index("video_jobs_user", "user_email", "created_at"),
)

# Stored Responses API answers (gateway.responses), by owner: a user's email, or "key:<id>"
# for a key of nobody's account. Rows older than [responses] retention_days are purged.
stored_responses = Table(
    "stored_responses",
    metadata,
    Column("owner", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    _text("key_id"),
    _text("model"),
    _text("status"),
    Column("response", Text, nullable=False),  # the response object, JSON
    Column("input_items", Text, nullable=False),  # the conversation's input items, JSON
    PrimaryKeyConstraint("owner", "id"),
    Index("stored_responses_time", "created_at"),
)

# Written by the migration runner only: one row per applied version.
schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)


def by_key(table: Table) -> list[Any]:
    """A table's columns for ``select``, each labelled with its key, so rows read back map to
    the records' field names (``user_email`` comes back as ``user``)."""
    return [column.label(column.key) if column.key != column.name else column
            for column in table.c]
