"""The text an OpenAI request and answer hold, for counting tokens when an upstream reports no
usage (a cut stream, a disconnect): the prompt's message texts, tool-call arguments and
reasoning; the answer's content, reasoning, refusals and tool-call arguments."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from adapters.base import readable
from adapters.openai.wire import ContentPart, FunctionCall


class _Call(msgspec.Struct):
    """A tool call, whole or a stream's fragment of one (no id after the first)."""

    function: FunctionCall | None = None


class _Said(msgspec.Struct):
    """A request message, a whole answer's message or a stream delta: the parts that hold text."""

    content: str | list[ContentPart] | UnsetType | None = UNSET
    reasoning_content: str | None = None
    refusal: str | None = None
    tool_calls: list[_Call] | None = None


class _Prompt(msgspec.Struct):
    messages: list[_Said] = []


class _Choice(msgspec.Struct):
    delta: _Said | None = None
    message: _Said | None = None


class _Answer(msgspec.Struct):
    choices: list[_Choice] = []
    error: msgspec.Raw = msgspec.Raw()  # empty when absent


_prompt = msgspec.json.Decoder(_Prompt)
_answer = msgspec.json.Decoder(_Answer)


def _said(said: _Said, out: list[str]) -> None:
    content = said.content
    if isinstance(content, str):
        out.append(content)
    elif isinstance(content, list):
        out.extend(part.text for part in content if isinstance(part.text, str))
    if said.reasoning_content:
        out.append(said.reasoning_content)
    if said.refusal:
        out.append(said.refusal)
    out.extend(call.function.arguments for call in said.tool_calls or () if call.function)


def prompt_texts(body: bytes) -> list[str]:
    """The texts of a chat-completions body's messages, in order."""
    out: list[str] = []
    for prompt in readable((body,), _prompt):
        for message in prompt.messages:
            _said(message, out)
    return out


def answer_texts(payloads: list[bytes]) -> list[str]:
    """The generated texts in the answer's payloads (stream chunks or one whole body); error
    payloads and anything unreadable count for nothing."""
    out: list[str] = []
    for answer in readable(payloads, _answer):
        for choice in answer.choices if not answer.error else ():
            for said in (choice.delta, choice.message):
                if said is not None:
                    _said(said, out)
    return out
