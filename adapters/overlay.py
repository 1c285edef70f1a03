"""Prompt overlays: what a persona or router adds to a request (a system prompt ahead of the
caller's own, a default temperature, a cap on the output tokens).

An overlay is put on the canonical request here (``apply_to_canonical``), or on a caller's body
going through to a same-dialect upstream by that dialect's client side (``overlay_body``).
Neither mutates what it is given: a body is shared by every fallback of one request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET

from adapters import canonical as c


@dataclass(frozen=True, slots=True)
class Overlay:
    """What a persona or router adds to a request."""

    system: str = ""
    temperature: float | None = None
    max_tokens: int | None = None

    def over(self, inner: Overlay | None) -> Overlay:
        """This overlay on top of ``inner``: both prompts (this one first), this one's limits."""
        if inner is None:
            return self
        system = "\n\n".join(part for part in (self.system, inner.system) if part)
        return Overlay(
            system=system,
            temperature=self.temperature if self.temperature is not None else inner.temperature,
            max_tokens=min(
                (v for v in (self.max_tokens, inner.max_tokens) if v is not None), default=None
            ),
        )


def capped(value: object, cap: int) -> int:
    """``value`` (the caller's output limit, any JSON value) at most ``cap``."""
    return min(value, cap) if isinstance(value, int) and not isinstance(value, bool) else cap


def overlay_options(body: dict[str, Any], overlay: Overlay, limit_key: str) -> dict[str, Any]:
    """``body`` (a fresh top-level copy, changed here) with the overlay's temperature where the
    caller set none and its cap on the output limit, which the dialect names ``limit_key``."""
    if overlay.temperature is not None and body.get("temperature") is None:
        body["temperature"] = overlay.temperature
    if overlay.max_tokens is not None:
        body[limit_key] = capped(body.get(limit_key), overlay.max_tokens)
    return body


def apply_to_canonical(request: c.Request, overlay: Overlay) -> c.Request:
    """The canonical request with the overlay on (a new request; ``request`` is unchanged)."""
    changes: dict[str, object] = {}
    if overlay.system:
        changes["system"] = [c.TextBlock(text=overlay.system), *request.system]
    if overlay.temperature is not None and request.temperature is UNSET:
        changes["temperature"] = overlay.temperature
    if overlay.max_tokens is not None:
        current = request.max_tokens
        changes["max_tokens"] = capped(current if current is not UNSET else None,
                                       overlay.max_tokens)
    return msgspec.structs.replace(request, **changes) if changes else request
