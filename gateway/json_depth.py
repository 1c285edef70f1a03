"""A bound on JSON nesting, checked on the raw bytes before any decoder sees them.

Decoders and everything that walks a decoded body (translation, usage estimates, routing
features) recurse once per level: a body nested 100,000 deep raised ``RecursionError`` deep
inside a handler, or inside the server. ``check_depth`` refuses such a body with a 400 first.

It is cheap on the hot path: a body with no more brackets than ``MAX_DEPTH`` cannot be nested
deeper, and counting them says so (a chat request: well under a microsecond). Otherwise
strings are dropped (a bracket inside a string does not nest), and the brackets left are
measured (see ``_depth_over``), all but the last step in C. A coding agent's conversation
always has more brackets than that: for 200 KB of it the check costs ~135 µs, ~550 with the
escapes of code (``\\n``, ``\\"``), under the cost of decoding it once or twice.

``DepthGuard`` applies the check to the body of every request to an app (the non-chat
routes) but multipart forms; the chat endpoints call ``check_depth`` from intake.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from gateway.errors import BadRequest

MAX_DEPTH = 128  # deeper than any real tool schema; far below Python's recursion limit
_ROUNDS = 16  # rounds of pair removal before the exact count
# Opening brackets to "[", closing to "]"; everything else is deleted.
_TO_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SIGNED = bytes.maketrans(b"[]", b"\x01\xff")
_ESCAPE = re.compile(rb"\\.", re.DOTALL)  # a backslash and what it escapes
# Up to this size two counts of the body cost less than its skeleton (0.37 µs against 0.65
# for a 200-byte chat request); past it, the skeleton's counts are the cheaper (~95 µs
# against ~135 for 200 KB).
_COUNTED = 16 * 1024
# All but quotes, backslashes and brackets: what says which brackets are inside strings.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"\\[]{}')


def check_depth(body: bytes, limit: int = MAX_DEPTH) -> None:
    """Raise ``BadRequest`` if the JSON in ``body`` nests deeper than ``limit``."""
    if len(body) <= _COUNTED and body.count(b"[") + body.count(b"{") <= limit:
        return
    skeleton = body.translate(None, _NOT_STRUCTURE)
    if skeleton.count(b"[") + skeleton.count(b"{") <= limit:
        return
    if _depth_over(_brackets(body, skeleton), limit):
        raise BadRequest(f"The JSON body is nested more than {limit} levels deep")


def _brackets(body: bytes, skeleton: bytes) -> bytes:
    """The brackets outside strings of ``body`` (whose quotes, backslashes and brackets are
    ``skeleton``), as "[" and "]".

    Escapes go first, each with the character it escapes (one regular-expression pass over
    the body: two ``bytes.replace`` passes took ~0.9 ms on 200 KB of code with its ``\\n``s).
    Then quote pairs with nothing between them are dropped: a string without brackets, or the
    gap between two strings (removing two quotes with no bracket between keeps the parity of
    the quotes before every bracket, so which brackets are inside a string). Every other
    quote-delimited part of what is left is a string. The whole check on a 200 KB chat body of
    ~1,000 brackets: 132 to 139 µs, 548 to 571 with escapes (it was 351 to 399 and 1,309 to
    1,401)."""
    if b"\\" in skeleton:
        skeleton = _ESCAPE.sub(b"", body).translate(None, _NOT_STRUCTURE)
    skeleton = skeleton.replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = b"".join(skeleton.split(b'"')[::2])
    return skeleton.translate(_TO_BRACKETS, _NOT_BRACKETS)


def _depth_over(brackets: bytes, limit: int) -> bool:
    """Whether ``brackets`` nest deeper than ``limit``: innermost pairs are removed a few
    rounds (each a C-level pass that lowers the depth by exactly one; real bodies empty in a
    few), then what is left is counted exactly, stopping at the first level past ``limit``."""
    removed = 0
    while removed < _ROUNDS:
        if not brackets:
            return removed > limit
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
