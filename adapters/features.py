"""What a router needs to know about a request, computed cheaply by the ingress that parsed it.

An ingress fills a ``RequestFeatures`` from its own typed request in one walk over the messages
(no JSON re-encoding, no regex): whether there are images or tools, a rough prompt token count
and the output limit asked for. The code-heavy hint is the only costly feature, so it is
computed on first use, from the text the ingress hands over, and only routers with a ``code``
rule ask for it.

How an ingress fills it (``adapters/openai/client.py`` does this for OpenAI)::

    features = RequestFeatures(has_images=..., has_tools=..., prompt_chars=...,
                               max_output=..., text=lambda: last_user_text)

An ingress that fills nothing gets ``features_from_canonical`` over its canonical request,
which is correct but slower.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from msgspec import UNSET

from adapters import canonical as c

# Characters per token for the estimate: close for English, generous for code and Thai.
CHARS_PER_TOKEN = 4
# Tokens an image costs in the estimate (a tile or two in most providers' accounting).
IMAGE_TOKENS = 1000

_FENCE = "```"
_CODE_SIGNALS = re.compile(
    r"^\s*(def |class |import |from \S+ import|#include|function |const |let |var |public |"
    r"private |return |if \(|for \(|while \(|SELECT |INSERT |UPDATE |CREATE TABLE)"
    r"|[{};]\s*$|=>|\)\s*\{|Traceback \(most recent call last\)|^\s+at \S+\(\S+:\d+\)",
    re.MULTILINE,
)
_CODE_WORDS = re.compile(
    r"\b(python|javascript|typescript|golang|rust|java|c\+\+|sql|regex|function|compile[rd]?|"
    r"refactor|debug|stack ?trace|unit tests?|script|api endpoint|bug)\b",
    re.IGNORECASE,
)


def looks_like_code(text: str) -> bool:
    """A cheap guess whether a prompt is about code: a fence, code-like lines or code words."""
    if _FENCE in text:
        return True
    sample = text[:20_000]  # a guess does not need the whole of a huge prompt
    lines = sum(1 for _ in _CODE_SIGNALS.finditer(sample))
    if lines >= 3:
        return True
    return lines + len(_CODE_WORDS.findall(sample[:4000])) >= 2


class RequestFeatures:
    """The routing-relevant facts of one request."""

    __slots__ = ("_code_heavy", "_text", "has_audio", "has_images", "has_tools", "max_output",
                 "prompt_tokens")

    def __init__(
        self,
        *,
        has_images: bool = False,
        has_tools: bool = False,
        has_audio: bool = False,
        prompt_chars: int = 0,
        images: int = 0,
        max_output: int | None = None,
        text: Callable[[], str] | None = None,
        code_heavy: bool | None = None,
    ) -> None:
        self.has_images = has_images or images > 0
        self.has_tools = has_tools
        self.has_audio = has_audio
        self.prompt_tokens = (prompt_chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN + (
            images * IMAGE_TOKENS
        )
        self.max_output = max_output
        self._text = text
        self._code_heavy = code_heavy

    @property
    def code_heavy(self) -> bool:
        """Whether the prompt looks like a programming task (computed once, on first use)."""
        if self._code_heavy is None:
            self._code_heavy = looks_like_code(self._text()) if self._text else False
        return self._code_heavy

    def __repr__(self) -> str:
        return (
            f"RequestFeatures(images={self.has_images}, tools={self.has_tools}, "
            f"prompt_tokens={self.prompt_tokens}, max_output={self.max_output})"
        )


def features_from_canonical(request: c.Request) -> RequestFeatures:
    """Features of a canonical request: the fallback for an ingress that fills none itself."""
    chars = sum(len(block.text) for block in request.system)
    images = 0
    audio = False
    last_user: list[str] = []
    for message in request.messages:
        texts: list[str] = []
        for block in message.content:
            if isinstance(block, c.TextBlock):
                chars += len(block.text)
                texts.append(block.text)
            elif isinstance(block, c.ImageBlock):
                images += 1
            elif isinstance(block, c.AudioBlock):
                audio = True
            elif isinstance(block, c.ToolResultBlock):
                for part in block.content:
                    if isinstance(part, c.TextBlock):
                        chars += len(part.text)
                    else:
                        images += 1
            elif isinstance(block, c.ToolUseBlock):
                chars += len(str(block.input))
        if message.role == "user" and texts:
            last_user = texts
    tools = request.tools
    text = "\n".join(last_user)
    return RequestFeatures(
        has_tools=tools is not UNSET and bool(tools),
        has_audio=audio,
        prompt_chars=chars,
        images=images,
        max_output=request.max_tokens if isinstance(request.max_tokens, int) else None,
        text=lambda: text,
    )
