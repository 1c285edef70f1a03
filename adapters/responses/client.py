"""The OpenAI Responses API dialect, client side: ``POST /v1/responses`` bodies in, answers out.

``ResponsesIngress`` parses and validates a Responses body; it goes unchanged to an upstream
that speaks the Responses API (an openai-kind provider with ``responses_api = true``) and in
canonical form to every other one. The canonical form is built when the body is parsed, so what
it cannot express (a built-in tool, an item by reference) is refused with a 400 whatever the
upstream. ``store`` and ``previous_response_id`` are kept on the parsed request
(``ResponsesRequest``) for the pipeline, which keeps responses and puts a previous response's
conversation into ``input`` (``gateway.responses``); ``previous_response_id`` never goes
upstream.
"""

from __future__ import annotations

from typing import Any

import msgspec

from adapters import canonical as c
from adapters.base import StreamTranslator
from adapters.client import DialectIngress, Parsed, check_model_name, decode_json, parsed_json
from adapters.errors import InvalidRequest
from adapters.overlay import Overlay, overlay_options
from adapters.responses import texts
from adapters.responses.convert import responses_to_canonical
from adapters.responses.encode import (
    canonical_to_responses,
    echoed,
    inspect_responses_reply,
    responses_error_frame,
)
from adapters.responses.stream import ResponsesPassthrough, ResponsesStreamEncoder
from adapters.responses.wire import ResponsesRequest

_request = msgspec.json.Decoder(ResponsesRequest)


def _check(request: ResponsesRequest) -> None:
    if not request.model:
        raise InvalidRequest(
            "'model' is empty: name a model (GET /v1/models lists them)", param="model"
        )
    check_model_name(request.model)
    if request.previous_response_id == "":
        raise InvalidRequest("'previous_response_id' is empty: name a stored response, or "
                             "leave it out", param="previous_response_id")
    if request.input == "" and request.previous_response_id is None:
        raise InvalidRequest("'input' is missing: send a string or a list of items",
                             param="input")


def overlay_responses_body(body: dict[str, Any], overlay: Overlay) -> dict[str, Any]:
    """``body`` (a fresh top-level copy) with the overlay on: the persona's system prompt
    before the caller's ``instructions``, its temperature when the caller set none, its output
    cap on ``max_output_tokens``."""
    if overlay.system:
        instructions = body.get("instructions")
        body["instructions"] = (f"{overlay.system}\n\n{instructions}" if instructions
                                else overlay.system)
    return overlay_options(body, overlay, "max_output_tokens")


class ResponsesIngress(DialectIngress, dialect="responses", texts=texts,
                       convert=responses_to_canonical, overlay=overlay_responses_body,
                       encode=canonical_to_responses, error_frame=responses_error_frame):
    """``POST /v1/responses``."""

    def parse(self, body: bytes) -> Parsed:
        """A validated Responses body (``InvalidRequest`` names the field at fault)."""
        request: ResponsesRequest = decode_json(body, _request)
        _check(request)
        parsed = parsed_json(body, request, request.model, bool(request.stream), True,
                             max_tokens=request.max_output_tokens)
        # Converted now, so what has no canonical form is a 400 here: the pipeline reads
        # InvalidRequest from parse only (later it would be an internal error).
        parsed.canonical(responses_to_canonical)
        return parsed

    def passthrough_body(self, parsed: Parsed, overlay: Overlay | None) -> dict[str, Any]:
        body = super().passthrough_body(parsed, overlay)
        # The gateway's own ids: by now its stored conversation is in 'input'.
        body.pop("previous_response_id", None)
        return body

    def passthrough_translator(self, parsed: Parsed, served_model: str) -> StreamTranslator:
        return ResponsesPassthrough(served_model)

    def canonical_translator(
        self, parsed: Parsed, served_model: str, response_id: str
    ) -> StreamTranslator:
        return ResponsesStreamEncoder(response_id, served_model, echoed(parsed.raw()))

    def passthrough_reply(self, body: bytes, served_model: str) -> tuple[bytes, c.Usage | None]:
        return inspect_responses_reply(body, served_model)
