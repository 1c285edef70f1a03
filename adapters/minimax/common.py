"""What every MiniMax API call shares: the default base URL, the key header, and the
``base_resp`` error convention.

MiniMax answers most failures with HTTP 200 and a body whose ``base_resp.status_code`` is not 0
(``status_msg`` says why). ``check_base_resp`` turns such a body into the
``ProviderHTTPError`` the HTTP status would have been, so fallback, cooldowns and the caller's
error work as for any provider:

=================================  ======  ===================================================
status_code                        status  meaning
=================================  ======  ===================================================
1002, 1039, 1041, 2045, 2056       429     rate, token, connection or usage limit (retryable)
1004, 2049                         401     the key was refused (the operator's; moves on)
1026, 1027, 2013                   400     sensitive input or output, invalid parameters: the
                                           caller's own request, its message shown
1001                               504     MiniMax timed out (retryable)
1008                               503     the operator's MiniMax balance ran out (retryable on
                                           another model; the deployment rests)
anything else (1000, 1024, 1033…)  500     MiniMax's own failure (retryable)
=================================  ======  ===================================================
"""

from __future__ import annotations

from typing import Protocol, TypeVar

import msgspec

from adapters.base import ProviderSettings
from adapters.errors import ProviderHTTPError, ProviderProtocolError
from adapters.upstream import JSONProvider, UpstreamClient

DEFAULT_BASE_URL = "https://api.minimax.io"

_STATUS_OF_CODE = {
    1002: 429, 1039: 429, 1041: 429, 2045: 429, 2056: 429,
    1004: 401, 2049: 401,
    1026: 400, 1027: 400, 2013: 400,
    1001: 504,
    1008: 503,
}


class BaseResp(msgspec.Struct):
    """MiniMax's outcome of a call: 0 is success."""

    status_code: int = 0
    status_msg: str = ""


def base_resp_error(base_resp: BaseResp) -> ProviderHTTPError | None:
    """The error a failed ``base_resp`` stands for (see the module docstring); None if it
    succeeded."""
    code = base_resp.status_code
    if code == 0:
        return None
    status = _STATUS_OF_CODE.get(code, 500)
    return ProviderHTTPError(status, f"MiniMax {code}: {base_resp.status_msg or 'error'}")


def check_base_resp(base_resp: BaseResp | None) -> None:
    """Raise the error of a failed ``base_resp`` (an absent one counts as success)."""
    if base_resp is not None and (error := base_resp_error(base_resp)) is not None:
        raise error


class HasBaseResp(Protocol):
    base_resp: BaseResp | None


Reply = TypeVar("Reply", bound=HasBaseResp)


def decode_checked(body: bytes, decoder: msgspec.json.Decoder[Reply]) -> Reply:
    """A MiniMax answer decoded by ``decoder`` (a Struct with ``base_resp``), its
    ``base_resp`` checked: a malformed body is a ``ProviderProtocolError``, a failed one the
    ``ProviderHTTPError`` it stands for."""
    try:
        reply = decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        # A failure body may not have the success shape: read its base_resp alone.
        check_base_resp(_envelope_of(body))
        raise ProviderProtocolError(f"malformed MiniMax answer: {exc}") from exc
    check_base_resp(reply.base_resp)
    return reply


class _Envelope(msgspec.Struct):
    base_resp: BaseResp | None = None


_envelope = msgspec.json.Decoder(_Envelope)


def _envelope_of(body: bytes) -> BaseResp | None:
    try:
        return _envelope.decode(body).base_resp
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class MiniMaxAPI(JSONProvider):
    """The HTTP side every MiniMax adapter shares: ``Authorization: Bearer <key>`` (the
    caller's own key or the operator's), and URLs under the base URL (the wiring gives
    ``DEFAULT_BASE_URL`` to a provider that configures none)."""

    def __init__(self, settings: ProviderSettings, client: UpstreamClient) -> None:
        super().__init__(settings, client)
        self.base_url = settings.base_url.rstrip("/")

    def url(self, path: str) -> str:
        """The URL of an API path (``/v1/image_generation``)."""
        return self.base_url + path
