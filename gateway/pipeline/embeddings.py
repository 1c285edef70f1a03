"""``POST /v1/embeddings``: the OpenAI embeddings API on the whole-answer pipeline.

Validated here (``adapters.embeddings``): ``input`` as a string, strings, token ids or arrays
of token ids; ``dimensions``; ``encoding_format`` float or base64. An openai-kind provider
gets the body as it came; Gemini gets it translated to ``batchEmbedContents`` (its adapter
also packs base64 itself); the mock hashes each input into a vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.embeddings import EmbeddingsRequest, inputs
from gateway.pipeline.whole import WholeOperation, texts_tokens


class EmbeddingsOperation(WholeOperation):
    """Embeddings in the OpenAI dialect."""

    name = "embeddings"
    request_type = EmbeddingsRequest

    def check(self, request: EmbeddingsRequest) -> None:
        inputs(request.input)

    def input_tokens(self, body: Mapping[str, Any]) -> int:
        value = body.get("input")
        if isinstance(value, list) and value and not isinstance(value[0], str):
            arrays = value if isinstance(value[0], list) else [value]
            return sum(len(a) for a in arrays if isinstance(a, list))
        return texts_tokens(value)
