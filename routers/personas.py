"""Personas: a name that puts a system prompt and defaults on a model.

A persona (``clear-coding``) names a model, alias or router and an ``Overlay``
(``adapters.overlay``): a system prompt sent ahead of the caller's own, a default temperature
(used when the caller sets none) and a cap on the output tokens (also the default when the
caller sets none). Routers with a prompt of their own (``ocr``) use the same overlay. How an
overlay is put on each dialect's body is that dialect's business, not the router's.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.overlay import Overlay


@dataclass(frozen=True, slots=True)
class Persona:
    """A named persona: its target (model, alias or router) and its overlay."""

    name: str
    target: str
    overlay: Overlay
    description: str = ""
