"""Token counts when an upstream reports none, and per-request account context.

Counting uses ``bpe-openai`` (the o200k_base BPE of OpenAI's current models, its vocabulary
shipped inside the wheel: nothing is downloaded at run time). Only the prompt can be counted
here, from the request body's text; rows counted this way are marked ``estimated``.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

import msgspec

from adapters import canonical as c

# The caller's own provider keys for the request being served (provider -> key), or None.
BYOK_KEYS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "byok_keys", default=None
)

_encoding: Any = None
_lock = threading.Lock()


def encoding() -> Any:
    """The tokenizer, loaded once (about 0.15 s); ``warm_up`` loads it off the event loop."""
    global _encoding
    with _lock:
        if _encoding is None:
            import bpe_openai  # type: ignore[import-untyped]

            _encoding = bpe_openai.get_encoding("o200k_base")
        return _encoding


def warm_up() -> None:
    threading.Thread(target=encoding, name="tokenizer-warm-up", daemon=True).start()


def count_tokens(text: str) -> int:
    return len(encoding().encode(text)) if text else 0


def _texts(node: Any, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, list):
        for item in node:
            _texts(item, out)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("text", "content", "system", "arguments", "input") or isinstance(
                value, list | dict
            ):
                _texts(value, out)


def estimate_usage(body: bytes, dialect: str) -> c.Usage:
    """Prompt tokens of a request body (OpenAI or Anthropic), counted with the tokenizer."""
    try:
        request = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return c.Usage()
    texts: list[str] = []
    if isinstance(request, dict):
        _texts(request.get("messages"), texts)
        _texts(request.get("system"), texts)
    return c.Usage(input_tokens=count_tokens("\n".join(texts)))


def max_tokens_of(parsed: Any) -> int | None:
    """The output cap a request asked for, if any."""
    typed = parsed.typed
    for name in ("max_completion_tokens", "max_tokens"):
        value = getattr(typed, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
