"""The rows the gateway reads and writes, as Python records whose field names are the column
keys of ``gateway.storage.tables``: a row becomes a record with ``Record(**row._mapping)``
and a record becomes bind parameters by name, never by position."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class KeyRecord:
    """One API key (``api_keys``); only the key's hash is stored."""

    id: str
    key_hash: str
    prefix: str
    name: str = ""
    user: str = ""
    tier: str = "free"
    created_at: float = 0.0
    last_used_at: float | None = None
    revoked_at: float | None = None
    permissions: str = "manage"  # "inference" or "manage" (gateway.accounts.keys)


@dataclass(slots=True)
class UsageRow:
    """One request as billed (``usage``)."""

    request_id: str
    created_at: float
    key_id: str = ""
    user: str = ""
    dialect: str = ""
    model_requested: str = ""
    model_served: str = ""
    provider: str = ""
    router: str = ""
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    status: int = 200
    error_type: str = ""
    attempts: int = 1
    fallback_level: int = 0
    estimated: bool = False
    cache_hit: bool = False
    # The operation (chat, responses, embeddings, rerank, moderation, images, video) and what
    # image and video models made (gateway.pipeline.settle prices them).
    operation: str = "chat"
    images: int = 0
    videos: int = 0
    video_seconds: float = 0.0
    # Unique id given by the ledger at the first write attempt (retries reuse it).
    row_id: str | None = None


@dataclass(slots=True)
class UserRecord:
    """One account (``users``)."""

    email: str
    id: str
    password_hash: str
    name: str = ""
    tier: str = "free"
    status: str = "active"  # active | blocked | pending (signup not verified yet)
    balance_usd: float = 0.0
    created_at: float = 0.0


@dataclass(slots=True)
class KeyPolicy:
    """Per-key limits on top of the tier's; 0 and empty mean "only the tier's"."""

    requests_per_minute: int = 0
    requests_per_day: int = 0
    allowed_models: tuple[str, ...] = ()


@dataclass(slots=True)
class StoredResponse:
    """One stored Responses API answer (``stored_responses``): the response object and the
    input items that led to it, both as JSON text."""

    owner: str
    id: str
    created_at: float
    response: str
    input_items: str
    key_id: str = ""
    model: str = ""
    status: str = ""
