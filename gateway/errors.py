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
    ├── UpstreamError                 (the upstream's 4xx status, its message kept)
    ├── AllTargetsFailed              502     provider_error          api_error
    ├── ServiceUnavailable            503     service_unavailable     overloaded_error
    │   └── Maintenance               503     maintenance             overloaded_error
    └── UpstreamTimeout               504     timeout                 timeout_error

Adapters raise ``adapters.errors.ProviderError`` subclasses; ``from_provider_error`` is the one
boundary where those become ``GatewayError``. A dialect's refusal of a caller's body
(``adapters.errors.InvalidRequest``) becomes a ``BadRequest`` in ``from_invalid_request``, and a
planner's refusal (``routers.refusals``) its client error in ``from_routing_refusal``.
"""

from __future__ import annotations

from adapters.anthropic.encode import anthropic_error_body
from adapters.errors import InvalidRequest, ProviderError, ProviderHTTPError, ProviderTimeout
from adapters.openai.encode import openai_error_body
from routers.refusals import RoutingRefused, Unavailable, UnknownModel


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
        upstream = UpstreamError(
            error.status,
            f"{target}: {error.message}",
            openai_type=openai_type,
            anthropic_type=anthropic_type,
        )
        if error.retry_after is not None:
            upstream.headers["Retry-After"] = str(max(1, round(error.retry_after)))
        return upstream
    return AllTargetsFailed(f"{target}: {error}; retry in a few seconds")


def from_invalid_request(error: InvalidRequest) -> BadRequest:
    """A dialect's refusal of a caller's body, as the 400 it stands for."""
    return BadRequest(error.message, param=error.param, code=error.code)


def from_routing_refusal(refusal: RoutingRefused) -> GatewayError:
    """A planner's refusal as the client error it stands for: an unknown model is a 404, an
    unavailable one a 503, any other refusal (a bad chain, an unservable request) a 400."""
    if isinstance(refusal, UnknownModel):
        return ModelNotFound(refusal.message, param=refusal.param)
    if isinstance(refusal, Unavailable):
        return ServiceUnavailable(refusal.message)
    return BadRequest(refusal.message, param=refusal.param)
