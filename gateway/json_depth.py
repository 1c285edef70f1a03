"""A bound on JSON nesting, checked on the raw bytes before any decoder sees them.

Decoders and everything that walks a decoded body (translation, usage estimates, routing
features) recurse once per level: a body nested 100,000 deep raised ``RecursionError`` deep
inside a handler, or inside the server. ``check_depth`` refuses such a body with a 400 first.

It is cheap on the hot path: a body with no more brackets than ``MAX_DEPTH`` cannot be nested
deeper, and two ``bytes.count`` calls say so (a chat request: well under a microsecond).
Otherwise strings are dropped (a bracket inside a string does not nest), and the brackets left
are measured (see ``_depth_over``), all but the last step in C: about the cost of decoding the
body once, and only for bodies with more than ``MAX_DEPTH`` brackets.

``DepthGuard`` applies the check to the body of every request to an app (the non-chat
routes) but multipart forms; the chat endpoints call ``check_depth`` from intake.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any

from gateway.errors import BadRequest

MAX_DEPTH = 128  # deeper than any real tool schema; far below Python's recursion limit
_ROUNDS = 16  # rounds of pair removal before the exact count
# Opening brackets to "[", closing to "]"; everything else is deleted.
_TO_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SIGNED = bytes.maketrans(b"[]", b"\x01\xff")


def check_depth(body: bytes, limit: int = MAX_DEPTH) -> None:
    """Raise ``BadRequest`` if the JSON in ``body`` nests deeper than ``limit``."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    if _depth_over(_brackets(body), limit):
        raise BadRequest(f"The JSON body is nested more than {limit} levels deep")


def _brackets(body: bytes) -> bytes:
    """The brackets outside strings, as "[" and "]": escapes dropped (backslash pairs first,
    so a remaining backslash-quote is an escaped quote), then every other quote-delimited
    part, which is a string."""
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    if b'"' in body:
        body = b"".join(body.split(b'"')[::2])
    return body.translate(_TO_BRACKETS, _NOT_BRACKETS)


def _depth_over(brackets: bytes, limit: int) -> bool:
    """Whether ``brackets`` nest deeper than ``limit``: innermost pairs are removed a few
    rounds (each a C-level pass that lowers the depth by exactly one; real bodies empty in a
    few), then what is left is counted exactly, stopping at the first level past ``limit``."""
    removed = 0
    while removed < _ROUNDS:
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break  # unbalanced (not JSON): count what is left
        brackets = shorter
        removed += 1
    levels = accumulate(memoryview(brackets.translate(_SIGNED)).cast("b"))
    return any(level > limit - removed for level in levels)


def _is_form(scope: dict[str, Any]) -> bool:
    """A multipart form is not JSON (an uploaded image may hold any bytes): not checked."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value[:19].lower() == b"multipart/form-data")
    return False


class DepthGuard:
    """ASGI middleware: ``check_depth`` on each request body as its last part arrives; a
    refusal is raised from ``receive`` into the handler reading it, so the app's exception
    handlers answer it like any other ``BadRequest``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _is_form(scope):
            await self.app(scope, receive, send)
            return
        parts: list[bytes] = []

        async def guarded() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    check_depth(b"".join(parts))
                    parts.clear()
            return message

        await self.app(scope, guarded, send)
