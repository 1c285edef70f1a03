"""The scenario vocabulary: what a fake upstream does, named by the upstream model.

A model name is ``-``-separated words (anything before a ``/`` is ignored). A word may carry a
number, attached or as the next word: ``tok64`` and ``tok-64`` are the same. Unknown words are
tags (``error-500-a`` is ``error500`` under a name of its own, so a test's health state stays
its own). ``x-fake-*`` request headers set the numbers too; the model name wins.

=============  ===================================================================================
word           behaviour
=============  ===================================================================================
(none)         answers ``fake: <last user text>``, streamed a word per chunk when asked
``tok<N>``     answers N tokens ``tok `` instead (body-independent, so built once and cached)
``gap<ms>``    that long between streamed chunks (header ``x-fake-gap-ms``)
``ttft<ms>``   that long before the first byte of the answer (header ``x-fake-ttft-ms``)
``error<N>``   HTTP status N in the dialect's error shape (header ``x-fake-error``); OpenAI's
               429 carries ``Retry-After: 1``
``context``    a 400 saying the context length was exceeded
``stall``      answers nothing at all until the client leaves
``hang``       a stream's headers, then nothing until the client leaves
``reset``      drops the connection without answering
``cut``        streams half the content chunks, then closes the connection mid-body
``malformed``  the second content chunk is not JSON (the rest follows)
``truncated``  the stream's body ends cleanly before the dialect's end event
``overloaded`` (Anthropic, streamed) an ``overloaded_error`` event after the first block
``big``        one 200 KB content delta
``tools``      calls get_weather(city=Paris) and get_time(tz=CET) in parallel; once the last
               turn holds tool results, answers ``results: <their texts>``
``reasoning``  (OpenAI) ``reasoning_content`` before the text
``thinking``   (Anthropic, Gemini) a signed thinking block / thought part before the text
``filtered``   (MiniMax images) success, but every image withheld
``nousage``    (embeddings, rerank) no ``usage`` in the answer
``polls<N>``   (video) the job finishes at its Nth poll (2 unless named); ``ttft`` delays polls
``fail``       (video) the job fails at its first poll, with the content policy's reason
``forever``    (video) the job never finishes
=============  ===================================================================================

So ``bench-tok64-gap20`` streams 64 tokens 20 ms apart, and ``fake/cut`` cuts an echo.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

_NUMBERS = {"tok": "tokens", "gap": "gap_ms", "ttft": "ttft_ms", "error": "error",
            "polls": "polls"}
_FLAGS = frozenset(
    {"context", "stall", "hang", "reset", "cut", "malformed", "truncated", "overloaded", "big",
     "tools", "reasoning", "thinking", "filtered", "nousage", "fail", "forever"}
)
_HEADERS = ((b"x-fake-tokens", "tokens"), (b"x-fake-gap-ms", "gap_ms"),
            (b"x-fake-ttft-ms", "ttft_ms"), (b"x-fake-error", "error"))


@dataclass(frozen=True, slots=True)
class Scenario:
    """One request's behaviour; hashable, so replies can be cached by it."""

    tokens: int = 0  # 0: echo the last user text
    gap_ms: float = 0.0
    ttft_ms: float = 0.0
    error: int = 0
    polls: int = 0  # 0: the video job's default
    flags: frozenset[str] = frozenset()

    def has(self, flag: str) -> bool:
        """Whether the model name holds the word ``flag``."""
        return flag in self.flags

    @property
    def cacheable(self) -> bool:
        """The reply depends on the scenario alone, not on the request's body."""
        return self.tokens > 0 and "tools" not in self.flags


_cache: dict[str, Scenario] = {}


def parse_scenario(model: str, headers: dict[bytes, bytes] | None = None) -> Scenario:
    """The behaviour named by ``model``'s words, over the ``x-fake-*`` headers."""
    scenario = _cache.get(model)
    if scenario is None:
        scenario = _parse(model)
        if len(_cache) < 4096:
            _cache[model] = scenario
    if headers:
        values = {field: float(headers[key]) if field.endswith("_ms") else int(headers[key])
                  for key, field in _HEADERS if key in headers and not getattr(scenario, field)}
        if values:
            scenario = replace(scenario, **values)  # type: ignore[arg-type]
    return scenario


def _parse(model: str) -> Scenario:
    values: dict[str, int] = {}
    flags: set[str] = set()
    words = model.rsplit("/", 1)[-1].split("-")
    for index, word in enumerate(words):
        name = word.rstrip("0123456789")
        if name in _NUMBERS:
            digits = word[len(name):]
            if not digits and index + 1 < len(words) and words[index + 1].isdigit():
                digits = words[index + 1]
            if digits:
                values[_NUMBERS[name]] = int(digits)
        elif word in _FLAGS:
            flags.add(word)
    return Scenario(**values, flags=frozenset(flags))
