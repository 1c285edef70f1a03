"""Every error a client can see, and how each dialect spells it.

::

    GatewayError                      status  openai type             anthropic type
    ├── BadRequest                    400     invalid_request_error   invalid_request_error
    ├── AuthenticationFailed          401     authentication_error    authentication_error
    ├── InsufficientBalance           402     insufficient_balance    billing_error
    ├── PermissionDenied              403     permission_error        permission_error
    │   └── AccountBlocked            403     blocked                 permission_error
    ├── NotFound                      404     not_found_error         not_found_error
    │   └── ModelNotFound             404     model_not_found         not_found_error
    ├── BodyTooLarge                  413     request_too_large       request_too_large
    ├── RateLimited                   429     rate_limit_error        rate_limit_error
    │   └── QuotaExceeded             429     limit                   rate_limit_error
    ├── UpstreamError                 (the upstream's 4xx status; its message kept only when
    │                                  the caller's own input caused it: CALLER_FAULTS)
    ├── AllTargetsFailed              502     provider_error          api_error
    ├── ServiceUnavailable            503     service_unavailable     overloaded_error
    │   └── Maintenance               503     maintenance             overloaded_error
    └── UpstreamTimeout               504     timeout                 timeout_error

Adapters raise ``adapters.errors.ProviderError`` subclasses; this module is the one place where
those become ``GatewayError``: ``from_provider_error`` for one failed call, ``all_failed`` for a
plan whose every target failed. A dialect's refusal of a caller's body
(``adapters.errors.InvalidRequest``) becomes a ``BadRequest`` in ``from_invalid_request``, and a
planner's refusal (``routers.refusals``) its client error in ``from_routing_refusal``.
"""

from __future__ import annotations

import math
import time

from adapters.anthropic.encode import anthropic_error_body
from adapters.errors import InvalidRequest, ProviderError, ProviderHTTPError, ProviderTimeout
from adapters.openai.encode import openai_error_body
from routers.attempts import Attempts
from routers.refusals import RoutingRefused, Unavailable, UnknownModel, WrongMode


class GatewayError(Exception):
    """Base of every error answered to a client."""

    status = 500
    openai_type = "api_error"
    anthropic_type = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self, dialect: str) -> bytes:
        """This error as ``dialect`` spells it (each dialect's shape is written by its package)."""
        if dialect == "anthropic":
            return anthropic_error_body(self)
        return openai_error_body(self)


class BadRequest(GatewayError):
    status = 400
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status = 401
    openai_type = "authentication_error"
    anthropic_type = "authentication_error"
    code = "invalid_api_key"


class InsufficientBalance(GatewayError):
    status = 402
    openai_type = "insufficient_balance"
    anthropic_type = "billing_error"
    code = "insufficient_balance"


class PermissionDenied(GatewayError):
    status = 403
    openai_type = "permission_error"
    anthropic_type = "permission_error"


class AccountBlocked(PermissionDenied):
    openai_type = "blocked"
    code = "account_blocked"


class NotFound(GatewayError):
    status = 404
    openai_type = "not_found_error"
    anthropic_type = "not_found_error"


class ModelNotFound(NotFound):
    openai_type = "invalid_request_error"
    code = "model_not_found"


class BodyTooLarge(GatewayError):
    status = 413
    openai_type = "invalid_request_error"
    anthropic_type = "request_too_large"
    code = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    openai_type = "rate_limit_error"
    anthropic_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class QuotaExceeded(RateLimited):
    openai_type = "limit"
    code = "daily_limit_exceeded"


class UpstreamError(GatewayError):
    """An upstream refused the request (4xx): its status and message are passed on."""

    def __init__(self, status: int, message: str, *, openai_type: str, anthropic_type: str) -> None:
        super().__init__(message)
        self.status = status
        self.openai_type = openai_type
        self.anthropic_type = anthropic_type


class AllTargetsFailed(GatewayError):
    status = 502
    openai_type = "provider_error"
    anthropic_type = "api_error"
    code = "upstream_error"


class ServiceUnavailable(GatewayError):
    status = 503
    openai_type = "service_unavailable"
    anthropic_type = "overloaded_error"


class Maintenance(ServiceUnavailable):
    openai_type = "maintenance"
    code = "maintenance"


class UpstreamTimeout(GatewayError):
    status = 504
    openai_type = "timeout"
    anthropic_type = "timeout_error"
    code = "upstream_timeout"


_UPSTREAM_4XX_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("authentication_error", "authentication_error"),
    403: ("permission_error", "permission_error"),
    404: ("not_found_error", "not_found_error"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "invalid_request_error"),
    429: ("rate_limit_error", "rate_limit_error"),
}


# Upstream statuses caused by the caller's own input: the provider's words help the caller fix
# it, so they are passed on. Any other failure gets the gateway's own words (the provider's may
# name the operator's account or organisation); the provider's text goes to the log.
CALLER_FAULTS = frozenset((400, 404, 413, 422))
_PHRASES = {
    408: "request timeout", 409: "conflict", 425: "too early", 429: "rate limited",
    500: "internal error", 502: "bad gateway", 503: "unavailable", 504: "timeout",
    529: "Overloaded",
}


def describe(error: ProviderError) -> str:
    """One failed call in the gateway's own words (see ``CALLER_FAULTS``)."""
    if isinstance(error, ProviderTimeout):
        return f"timed out waiting for the {error.phase.replace('_', ' ')}"
    if isinstance(error, ProviderHTTPError):
        if error.status in (401, 403):
            return f"HTTP {error.status}: the provider refused the gateway's credentials"
        if error.status in CALLER_FAULTS:
            return f"HTTP {error.status}: {error.message}"
        phrase = _PHRASES.get(error.status, "error")
        return f"HTTP {error.status}: {phrase} at the provider"
    # Connection and protocol failures are described by our own adapters, not the provider.
    return str(error)


def from_provider_error(error: ProviderError, target: str) -> GatewayError:
    """The client-facing error for one failed upstream call to ``target``."""
    if isinstance(error, ProviderTimeout):
        phase = error.phase.replace("_", " ")
        return UpstreamTimeout(f"{target}: upstream timed out waiting for the {phase}; retry later")
    if isinstance(error, ProviderHTTPError) and 400 <= error.status < 500:
        if error.status in (401, 403):
            # The provider refused *our* credentials: not the caller's fault, not their key.
            return AllTargetsFailed(
                f"{target}: the provider refused the gateway's credentials "
                f"({error.status}); tell the operator"
            )
        openai_type, anthropic_type = _UPSTREAM_4XX_TYPES.get(
            error.status, ("invalid_request_error", "invalid_request_error")
        )
        if error.status in CALLER_FAULTS:
            message = f"{target}: {error.message}"
        elif error.status == 429:
            message = f"{target}: rate-limited by the provider; retry later"
        else:
            message = f"{target}: {describe(error)}; retry later"
        upstream = UpstreamError(
            error.status, message, openai_type=openai_type, anthropic_type=anthropic_type
        )
        if error.retry_after is not None:
            upstream.headers["Retry-After"] = str(max(1, round(error.retry_after)))
        return upstream
    return AllTargetsFailed(f"{target}: {describe(error)}; retry in a few seconds")


def all_failed(attempts: Attempts) -> GatewayError:
    """The most telling error for a plan whose every target failed, listing each attempt."""
    failures = attempts.failures
    retry_in = 0
    if attempts.benched:
        retry_in = max(1, math.ceil(min(attempts.benched.values()) - time.monotonic()))
    tried = {target.id for target, _ in failures}
    resting = ", ".join(name for name in attempts.benched if name not in tried)
    if not failures:
        return _none_tried(attempts, resting, retry_in)
    if len(failures) == 1 and not resting:
        target, error = failures[0]
        return from_provider_error(error, target.id)
    listing = "; ".join(f"{target.id}: {describe(error)}" for target, error in failures)
    if resting:
        listing += f"; resting, not tried: {resting}"
    errors = [error for _, error in failures]
    hints = [e.retry_after for e in errors if isinstance(e, ProviderHTTPError) and e.retry_after]
    seconds = math.ceil(min(hints)) if hints else retry_in
    headers = {"Retry-After": str(max(1, seconds))} if seconds else {}
    count = f"{len(failures)} attempt{'s' if len(failures) > 1 else ''}"
    if all(isinstance(e, ProviderHTTPError) and e.status == 429 for e in errors):
        return RateLimited(
            f"Every model is rate-limited ({listing}); retry in {max(1, seconds)} s",
            headers=headers,
        )
    if all(e.context_overflow for e in errors):
        return BadRequest(
            f"The prompt is too long for every model tried ({listing}); shorten it or name a "
            "model with a larger context",
            param="messages",
            code="context_length_exceeded",
        )
    if all(isinstance(e, ProviderTimeout) for e in errors):
        return UpstreamTimeout(f"All {count} timed out ({listing}); retry later", headers=headers)
    return AllTargetsFailed(f"All {count} failed ({listing}); retry later", headers=headers)


def _none_tried(attempts: Attempts, resting: str, retry_in: int) -> GatewayError:
    """No target could be called: every one is resting (benched) or none was left."""
    if resting and set(attempts.benched) <= attempts.limited:
        return RateLimited(
            f"Every model for this request is rate-limited by its provider ({resting}); "
            f"retry in {retry_in} s",
            headers={"Retry-After": str(retry_in)},
        )
    if resting:
        return ServiceUnavailable(
            f"Every model for this request is resting after failures or rate limits "
            f"({resting}); retry in {retry_in} s",
            headers={"Retry-After": str(retry_in)},
        )
    return AllTargetsFailed("No model of this request could be tried; retry later")


def from_invalid_request(error: InvalidRequest) -> BadRequest:
    """A dialect's refusal of a caller's body, as the 400 it stands for."""
    return BadRequest(error.message, param=error.param, code=error.code)


# Where each mode is served (``routers.catalog.MODES``), for a refusal that says where to go.
MODE_ENDPOINTS = {
    "chat": "POST /v1/chat/completions (or /v1/messages, /v1/responses)",
    "embeddings": "POST /v1/embeddings",
    "images": "POST /v1/images/generations",
    "video": "POST /v1/videos (or /v1/video/generations)",
    "rerank": "POST /v1/rerank",
    "moderation": "POST /v1/moderations",
}


def from_routing_refusal(refusal: RoutingRefused) -> GatewayError:
    """A planner's refusal as the client error it stands for: an unknown model is a 404, an
    unavailable one a 503, any other refusal (a bad chain, an unservable request, a model of
    another mode) a 400."""
    if isinstance(refusal, WrongMode):
        return BadRequest(
            f"Model '{refusal.name}' has mode \"{refusal.mode}\" and this endpoint serves "
            f"mode \"{refusal.wanted}\": send it to "
            f"{MODE_ENDPOINTS.get(refusal.mode, 'the endpoint of its mode')}",
            param=refusal.param, code="model_mode_mismatch",
        )
    if isinstance(refusal, UnknownModel):
        return ModelNotFound(refusal.message, param=refusal.param)
    if isinstance(refusal, Unavailable):
        return ServiceUnavailable(refusal.message)
    return BadRequest(refusal.message, param=refusal.param)
