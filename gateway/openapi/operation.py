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
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.method.upper(), self.path
