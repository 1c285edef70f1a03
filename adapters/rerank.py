"""The rerank operation in the Cohere/Jina shape that vLLM, NVIDIA, Jina and others serve:
``{model, query, documents, top_n, return_documents}`` in, ``{results: [{index,
relevance_score, document?}], usage?}`` out. The gateway validates what it reads and passes the
body through (other fields too, such as Cohere's ``max_tokens_per_doc``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from adapters.errors import InvalidRequest

MAX_DOCUMENTS = 10_000


class RerankRequest(msgspec.Struct, kw_only=True):
    """The fields of a rerank request the gateway reads (others pass through)."""

    model: str
    query: str
    documents: list[Any]  # strings, or objects with a "text" string
    top_n: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    return_documents: bool | UnsetType = UNSET


def check_rerank(request: RerankRequest) -> None:
    """``InvalidRequest`` naming the field for what the types cannot say."""
    if not request.query.strip():
        raise InvalidRequest("'query' is empty: send the text to rank the documents by",
                             param="query")
    if not request.documents:
        raise InvalidRequest("'documents' is empty: send at least one document",
                             param="documents")
    if len(request.documents) > MAX_DOCUMENTS:
        raise InvalidRequest(f"'documents' has {len(request.documents)} items; at most "
                             f"{MAX_DOCUMENTS} per request", param="documents")
    for index, document in enumerate(request.documents):
        text = document.get("text") if isinstance(document, dict) else document
        if not isinstance(text, str):
            raise InvalidRequest(f"'documents[{index}]' must be a string or an object with a "
                                 "'text' string", param=f"documents[{index}]")
