"""The text an Anthropic request and answer hold, for counting tokens when an upstream reports
no usage: the prompt's messages then its system prompt; the answer's text, thinking and tool
input deltas (or a whole message's content blocks)."""

from __future__ import annotations

from typing import Any

import msgspec

from adapters.base import readable

# Block keys whose string values are read or written by the model.
_TEXT_KEYS = frozenset(
    ("text", "content", "system", "arguments", "input", "partial_json", "thinking",
     "reasoning_content", "refusal")
)


def _texts(node: Any, out: list[str]) -> None:
    """Every string under a text key of a block (or list of blocks), depth first."""
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, list):
        for item in node:
            _texts(item, out)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _TEXT_KEYS or isinstance(value, list | dict):
                _texts(value, out)


class _Prompt(msgspec.Struct):
    messages: list[Any] = []
    system: Any = None


class _Event(msgspec.Struct):
    """A stream event, or a whole message: where each keeps its generated text."""

    delta: Any = None
    content_block: Any = None
    content: Any = None
    error: msgspec.Raw = msgspec.Raw()  # empty when absent


_prompt = msgspec.json.Decoder(_Prompt)
_event = msgspec.json.Decoder(_Event)


def prompt_texts(body: bytes) -> list[str]:
    """The texts of a Messages body: its messages, then its system prompt."""
    out: list[str] = []
    for prompt in readable((body,), _prompt):
        _texts(prompt.messages, out)
        _texts(prompt.system, out)
    return out


def answer_texts(payloads: list[bytes]) -> list[str]:
    """The generated texts in the answer's payloads (stream events or one whole message)."""
    out: list[str] = []
    for event in readable(payloads, _event):
        if not event.error:
            _texts(event.delta or event.content_block or event.content, out)
    return out
