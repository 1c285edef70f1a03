"""The text a Responses request and answer hold, for counting tokens when an upstream reports
no usage (a cut stream, a disconnect): the prompt's instructions, message texts, tool-call
arguments and outputs; the answer's deltas (a stream) or output items (a whole body)."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from adapters.base import readable
from adapters.responses.wire import Part, SummaryPart


class _Item(msgspec.Struct):
    """An input or output item: the fields that hold text."""

    content: str | list[Part] | UnsetType | None = UNSET
    arguments: str = ""
    output: str | list[Part] | UnsetType = UNSET
    summary: list[SummaryPart] = []


class _Prompt(msgspec.Struct):
    instructions: str | None = None
    input: str | list[_Item] = ""


class _Answer(msgspec.Struct):
    """A stream event's payload or a whole ``response`` body."""

    type: str = ""
    object: str = ""
    delta: str = ""
    output: list[_Item] = []


_prompt = msgspec.json.Decoder(_Prompt)
_answer = msgspec.json.Decoder(_Answer)


def _content(content: str | list[Part] | UnsetType | None, out: list[str]) -> None:
    if isinstance(content, str):
        out.append(content)
    elif isinstance(content, list):
        for part in content:
            text = part.text if part.text is not UNSET else part.refusal
            if isinstance(text, str):
                out.append(text)


def _item(item: _Item, out: list[str]) -> None:
    _content(item.content, out)
    _content(item.output, out)
    if item.arguments:
        out.append(item.arguments)
    out.extend(part.text for part in item.summary)


def prompt_texts(body: bytes) -> list[str]:
    """The texts of a Responses body: instructions first, then each input item's."""
    out: list[str] = []
    for prompt in readable((body,), _prompt):
        if prompt.instructions:
            out.append(prompt.instructions)
        if isinstance(prompt.input, str):
            out.append(prompt.input)
        else:
            for item in prompt.input:
                _item(item, out)
    return out


def answer_texts(payloads: list[bytes]) -> list[str]:
    """The generated texts in the answer's payloads: each ``….delta`` event of a stream (the
    ``.done`` events and the final response repeat them), or a whole body's output items."""
    out: list[str] = []
    for answer in readable(payloads, _answer):
        if answer.type.endswith(".delta"):
            out.append(answer.delta)
        elif answer.object == "response":
            for item in answer.output:
                _item(item, out)
    return out
