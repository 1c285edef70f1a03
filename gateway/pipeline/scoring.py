"""``POST /v1/rerank`` and ``POST /v1/moderations`` on the whole-answer pipeline: both read
text and generate none, so both are billed by input tokens (``input_price``), counted here
when the upstream reports none (OpenAI's moderations never do). The request shapes and their
checks are ``adapters.rerank`` and ``adapters.moderation``; openai-kind providers and the mock
serve them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.moderation import ModerationRequest, check_moderation
from adapters.rerank import RerankRequest, check_rerank
from gateway.pipeline.whole import WholeOperation, texts_tokens


class RerankOperation(WholeOperation):
    """Rerank in the Cohere/Jina shape."""

    name = "rerank"
    request_type = RerankRequest

    def check(self, request: RerankRequest) -> None:
        check_rerank(request)

    def input_tokens(self, body: Mapping[str, Any]) -> int:
        return texts_tokens(body.get("query")) + texts_tokens(body.get("documents"))


class ModerationOperation(WholeOperation):
    """Moderation in the OpenAI dialect."""

    name = "moderation"
    request_type = ModerationRequest

    def check(self, request: ModerationRequest) -> None:
        check_moderation(request)

    def input_tokens(self, body: Mapping[str, Any]) -> int:
        return texts_tokens(body.get("input"))
