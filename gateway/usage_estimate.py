"""Token counts when an upstream reports none.

Counting uses ``bpe-openai`` (the o200k_base BPE of OpenAI's current models, its vocabulary
shipped inside the wheel: nothing is downloaded at run time). The prompt is counted from the
request body's text, the completion from the answer frames the client received, each read by
the caller's dialect (``prompt_texts`` / ``answer_texts`` of ``adapters/<dialect>/texts.py``);
rows counted this way are marked ``estimated``.

The tokenizer is loaded on first need, not at start: the first request that needs it has
already been answered; its settlement (ledger row, log line, token counters) waits in a task
while ``load_tokenizer`` loads it in a thread, the event loop serving everything else meanwhile.
A process whose upstreams always report usage never loads it.

It is the package's Rust extension (``bpe_openai._bindings``), loaded by itself: ``import
bpe_openai`` first parses three vocabularies in Python (cl100k, o200k and voyage3, for their
special tokens), which took 7-11 s and 147 MB on a loaded two-core machine where the extension
alone took 0.7 s and 71 MB. That time is on the path of a stream cut at shutdown (its row waits
for it), so a second signal, which flushes and exits at once, would otherwise wait for it too.
"""

from __future__ import annotations

import asyncio
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters import canonical as c
from adapters.client import Ingress, Parsed
from adapters.overlay import Overlay
from adapters.sse import data_payloads

_count: Callable[[str], int] | None = None
_lock = threading.Lock()
_loading: asyncio.Future[Any] | None = None
_BACKEND = "bpe_openai._bindings"


def _o200k() -> Any:
    """bpe-openai's Rust tokenizer for o200k_base, without the package's Python layer."""
    module = sys.modules.get(_BACKEND)
    if module is None:
        package = importlib.util.find_spec("bpe_openai")  # found, not imported
        assert package is not None and package.submodule_search_locations is not None
        folder = Path(next(iter(package.submodule_search_locations)))
        path = str(next(folder.glob("_bindings*.so")))
        loader = importlib.machinery.ExtensionFileLoader(_BACKEND, path)
        spec = importlib.util.spec_from_file_location(_BACKEND, path, loader=loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        sys.modules[_BACKEND] = module  # an extension is initialised once per process
    return module.tokenizer_for_encoding("o200k_base")


def counter() -> Callable[[str], int]:
    """The token counter, loaded once (blocking): on the event loop, await ``load_tokenizer``
    first."""
    global _count
    with _lock:
        if _count is None:
            _count = _o200k().count
        return _count


def tokenizer_loaded() -> bool:
    return _count is not None


async def load_tokenizer() -> None:
    """Load the tokenizer in a thread (once, however many callers wait)."""
    global _loading
    if _count is not None:
        return
    if _loading is None:
        _loading = asyncio.get_running_loop().run_in_executor(None, counter)
    await asyncio.shield(_loading)


def count_tokens(text: str) -> int:
    return counter()(text) if text else 0


def estimate_usage(ingress: Ingress, body: bytes, sent: SentBodies | None = None) -> c.Usage:
    """Usage counted with the tokenizer: the prompt from the request body, the completion from
    the answer frames sent to the client, each read by the caller's dialect (``ingress``)."""
    texts = ingress.prompt_texts(body)
    output_tokens = 0
    if sent:
        output_tokens = count_tokens("".join(ingress.answer_texts(data_payloads(sent.chunks))))
        kept = sum(len(chunk) for chunk in sent.chunks)
        if sent.size > kept > 0:  # only the first ``limit`` bytes were kept: scale up
            output_tokens = round(output_tokens * sent.size / kept)
    return c.Usage(input_tokens=count_tokens("\n".join(texts)), output_tokens=output_tokens)


class SentBodies:
    """The answer frames sent to the client while no usage is known, so a call whose upstream
    reported none can still be counted: references to the first ``limit`` bytes (the rest only
    counted). The cap bounds the memory held per request; past it the count is scaled by bytes.

    The chat endpoint calls ``record`` for what it sends while the usage is unknown and
    ``clear`` once the upstream reports usage (no wrapper around ``send``). Called as an ASGI
    ``send`` wrapper, it records every body and passes the message on."""

    __slots__ = ("chunks", "limit", "send", "size")

    def __init__(self, send: Any = None, limit: int = 256 * 1024) -> None:
        self.send = send
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit

    def record(self, chunk: bytes) -> None:
        if self.size < self.limit:
            self.chunks.append(chunk)
        self.size += len(chunk)

    def clear(self) -> None:
        self.chunks.clear()
        self.size = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunk = message.get("body")
            if chunk:
                self.record(chunk)
        await self.send(message)


def max_tokens_of(parsed: Parsed, overlay: Overlay | None = None) -> int | None:
    """The output cap of a request: the caller's, capped by a persona's (``overlay``)."""
    asked = parsed.max_tokens
    cap = overlay.max_tokens if overlay is not None else None
    if cap is not None and cap > 0:
        return min(asked, cap) if asked else cap
    return asked
