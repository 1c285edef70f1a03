"""Semantic versions (https://semver.org): parsing and precedence, so 0.10.0 > 0.9.0 and a
pre-release sorts before its release (1.0.0-rc.1 < 1.0.0)."""

from __future__ import annotations

import re

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
# A pre-release identifier: numbers sort before words, numbers by value, words by ASCII.
Identifier = tuple[int, int, str]
Version = tuple[int, int, int, int, tuple[Identifier, ...]]


def parse_version(text: str) -> Version | None:
    """A sort key for ``text`` (``1.2.3``, ``v1.2.3``, ``1.2.3-rc.1+build``), or ``None`` if it
    is not a semantic version. Build metadata does not count in the order."""
    match = _SEMVER.match(text.strip()) if len(text) <= 256 else None
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in (pre.split(".") if pre else ())
    )
    # A release (no pre-release part) sorts after all of its pre-releases.
    return int(major), int(minor), int(patch), 0 if pre else 1, identifiers
