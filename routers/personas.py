"""Personas and prompt overlays: a name that puts a system prompt and defaults on a model.

A persona (``clear-coding``) names a model, alias or router and an ``Overlay``: a system prompt
sent ahead of the caller's own, a default temperature (used when the caller sets none) and a
cap on the output tokens (also the default when the caller sets none). Routers with a prompt of
their own (``ocr``) use the same overlay.

Overlays are applied once per request, either to the caller's body on its way through to a
same-dialect upstream (``apply_to_body``, per dialect) or to the canonical request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Persona:
    """A named persona: its target (model, alias or router) and its overlay."""

    name: str
    target: str
    overlay: Overlay
    description: str = ""


def _capped(value: Any, cap: int) -> int:
    return min(value, cap) if isinstance(value, int) and not isinstance(value, bool) else cap


def apply_to_canonical(request: c.Request, overlay: Overlay) -> None:
    """Put the overlay on a canonical request, in place."""
    if overlay.system:
        request.system.insert(0, c.TextBlock(text=overlay.system))
    if overlay.temperature is not None and request.temperature is UNSET:
        request.temperature = overlay.temperature
    if overlay.max_tokens is not None:
        current = request.max_tokens
        request.max_tokens = _capped(current if current is not UNSET else None, overlay.max_tokens)


def apply_to_openai_body(body: dict[str, Any], overlay: Overlay) -> None:
    """Put the overlay on an OpenAI chat-completions body, in place."""
    if overlay.system:
        messages = body.get("messages")
        if isinstance(messages, list):
            messages.insert(0, {"role": "system", "content": overlay.system})
    if overlay.temperature is not None and body.get("temperature") is None:
        body["temperature"] = overlay.temperature
    if overlay.max_tokens is not None:
        if body.get("max_completion_tokens") is not None:
            body["max_completion_tokens"] = _capped(body["max_completion_tokens"],
                                                    overlay.max_tokens)
        else:
            body["max_tokens"] = _capped(body.get("max_tokens"), overlay.max_tokens)


def apply_to_anthropic_body(body: dict[str, Any], overlay: Overlay) -> None:
    """Put the overlay on an Anthropic messages body, in place."""
    if overlay.system:
        system = body.get("system")
        if isinstance(system, list):
            body["system"] = [{"type": "text", "text": overlay.system}, *system]
        elif isinstance(system, str) and system:
            body["system"] = f"{overlay.system}\n\n{system}"
        else:
            body["system"] = overlay.system
    if overlay.temperature is not None and body.get("temperature") is None:
        body["temperature"] = overlay.temperature
    if overlay.max_tokens is not None:
        body["max_tokens"] = _capped(body.get("max_tokens"), overlay.max_tokens)


# How each dialect's body takes an overlay; a dialect missing here goes through canonical form.
BODY_APPLIERS: dict[str, Callable[[dict[str, Any], Overlay], None]] = {
    "openai": apply_to_openai_body,
    "anthropic": apply_to_anthropic_body,
}
