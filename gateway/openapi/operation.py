"""What one documented route declares: ``Operation``, the single place a route's request, answers
and errors are described for ``/openapi.json``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Auth = Literal["key", "admin", "none"]
Dialect = Literal["openai", "anthropic"]

# What a chat call may be refused with (docs/accounts.md and the errors module list why).
CHAT_ERRORS = (400, 401, 402, 403, 404, 413, 429, 502, 503, 504)

# What every chat answer says about itself (docs/routing.md, docs/accounts.md).
CHAT_HEADERS = {
    "X-Request-Id": "This request's id (the caller's own, if it sent one)",
    "X-Resolved-Model": "The model that served",
    "X-Fallback-Level": "Which model of the plan served: 0 is the first choice",
    "X-Fallback-Model": "The model that served, when a fallback did",
    "X-Router": "The named router that chose the models, if one did",
    "X-Persona": "The persona asked for, if one was",
    "X-RateLimit-Limit": "Requests per minute allowed",
    "X-RateLimit-Remaining": "Requests left in the current minute",
    "X-RateLimit-Reset": "Unix time when the minute window frees the next request",
    "X-Credits-Remaining": "Daily credits left (prepaid tiers: the balance in USD)",
    "X-Tier": "The account's tier",
    "X-Cost-USD": "This request's cost; an upper bound on streams (X-Cost-Estimated: true)",
    "X-Key-Source": "pool (the gateway's provider key) or byok (the caller's own)",
}


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter (path parameters come from the route's path)."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path.

    ``answers`` maps each success status to the Struct of its body (``None``: no schema, e.g.
    text). ``errors`` lists the statuses the route may answer in ``dialect``'s error shape.
    ``stream``: the 200 may also be ``text/event-stream`` (``"stream": true`` in the body).
    ``headers``: response headers of the success answers, by name, with what each means.
    """

    method: str
    path: str
    summary: str
    tag: str
    answers: Mapping[int, type | None]
    body: type | None = None
    auth: Auth = "key"
    dialect: Dialect = "openai"
    errors: tuple[int, ...] = (400, 401)
    query: tuple[Param, ...] = ()
    stream: bool = False
    media_type: str = "application/json"
    example: Mapping[str, Any] | None = None
    description: str = ""
    body_required: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.method.upper(), self.path
