"""Errors raised by adapters, sorted into what the dispatcher needs to know.

::

    ProviderError                 something went wrong talking to a provider
    ├── ProviderConnectionError   could not connect, or the connection was reset
    ├── ProviderTimeout           connect, first byte or idle-between-chunks timeout (``phase``)
    ├── ProviderProtocolError     the provider answered something we cannot parse
    └── ProviderHTTPError         the provider answered an error status (``status``, ``message``)

``retryable`` says whether another target (or a retry) may succeed where this one failed:
connection errors, timeouts, malformed answers, 408/409/429 and 5xx are; other 4xx are the
request's own fault. ``context_overflow`` marks a 4xx that a model with a larger context may not
repeat; ``credentials_refused`` a 401/403 (the provider refused the gateway's key, not the
caller); ``rate_limited`` a 429 (``retry_after`` says for how long, when the provider says).

On the client side, ``InvalidRequest`` is a caller's body its dialect refuses (400), and
``CallerError`` is what a dialect needs to write any error back to its caller;
``gateway/errors.py`` maps both.
"""

from __future__ import annotations

import re
from typing import Protocol

_CONTEXT_OVERFLOW = re.compile(
    r"context[_ ]length|context window|maximum context|too many tokens|prompt is too long"
    r"|input is too long|exceeds the maximum",
    re.IGNORECASE,
)


class ProviderError(Exception):
    """Base of every adapter failure."""

    retryable = True
    context_overflow = False
    credentials_refused = False
    rate_limited = False
    retry_after: float | None = None


class ProviderConnectionError(ProviderError):
    """The connection could not be made or broke before the answer was complete."""


class ProviderTimeout(ProviderError):
    """The provider took too long; ``phase`` is connect, first_byte or idle."""

    def __init__(self, phase: str) -> None:
        super().__init__(f"timed out waiting for {phase.replace('_', ' ')}")
        self.phase = phase


class ProviderProtocolError(ProviderError):
    """The provider's answer was not in its own dialect (a malformed chunk, a bad body)."""


class ProviderHTTPError(ProviderError):
    """The provider answered an error status."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.retryable = status in (408, 409, 425, 429) or status >= 500
        self.credentials_refused = status in (401, 403)
        self.rate_limited = status == 429
        self.context_overflow = status in (400, 413, 422) and bool(
            _CONTEXT_OVERFLOW.search(message)
        )


class InvalidRequest(Exception):
    """A caller's body that its dialect refuses: the gateway answers 400 in the caller's
    dialect. ``param`` names the field at fault."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class CallerError(Protocol):
    """An error as a client-side dialect spells it to its caller. The gateway's own error
    classes have these attributes; adapters need to know nothing else of them."""

    status: int
    message: str
    param: str | None
    code: str | None
    openai_type: str
    anthropic_type: str
