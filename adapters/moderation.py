"""The moderation operation in the OpenAI dialect: ``{model, input}`` in, where ``input`` is a
string, strings, or content parts (``{"type": "text", "text"}``, ``{"type": "image_url",
"image_url": {"url"}}``); ``{id, model, results: [{flagged, categories, category_scores}]}``
out. ``model`` may be left out, as OpenAI allows: it is then ``DEFAULT_MODEL``, which an operator
may give as an alias to the moderation model of their choice."""

from __future__ import annotations

from typing import Any

import msgspec

from adapters.errors import InvalidRequest

DEFAULT_MODEL = "omni-moderation-latest"
MAX_INPUTS = 1000


class ModerationRequest(msgspec.Struct, kw_only=True):
    """The fields of a moderation request the gateway reads (others pass through)."""

    input: str | list[Any]
    model: str = DEFAULT_MODEL


def _check_part(index: int, part: Any) -> None:
    where = f"input[{index}]"
    if isinstance(part, str):
        return
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return
    if kind == "image_url" and isinstance(part.get("image_url"), dict) and isinstance(
            part["image_url"].get("url"), str):
        return
    raise InvalidRequest(f"'{where}' must be a string, a text part ({{\"type\": \"text\", "
                         "\"text\": …}) or an image_url part", param=where)


def check_moderation(request: ModerationRequest) -> None:
    """``InvalidRequest`` naming the field for what the types cannot say."""
    value = request.input
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("'input' is an empty string: send text to classify",
                                 param="input")
        return
    if not value:
        raise InvalidRequest("'input' is an empty array: send at least one input",
                             param="input")
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(f"'input' has {len(value)} items; at most {MAX_INPUTS}",
                             param="input")
    for index, part in enumerate(value):
        _check_part(index, part)
