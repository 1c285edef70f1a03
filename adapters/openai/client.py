"""The OpenAI chat-completions dialect, client side: a caller's body in, canonical form out.

``OpenAIIngress`` parses and validates ``POST /v1/chat/completions`` bodies; the answers back to
the caller are written by ``adapters.openai.encode``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from adapters import canonical as c
from adapters.base import StreamTranslator
from adapters.client import (
    DialectIngress,
    Parsed,
    check_model_name,
    decode_json,
    parsed_json,
)
from adapters.errors import InvalidRequest
from adapters.features import RequestFeatures
from adapters.openai import texts
from adapters.openai.encode import (
    OpenAIPassthrough,
    OpenAIStreamEncoder,
    canonical_to_openai_response,
    inspect_openai_response,
    openai_error_frame,
)
from adapters.openai.wire import (
    REQUEST_ROLES,
    ChatMessage,
    ChatRequest,
    ContentPart,
    NamedToolChoice,
    content_parts_to_blocks,
    parse_arguments,
)
from adapters.overlay import Overlay, overlay_options


def _tool_choice_to_canonical(choice: str | NamedToolChoice, parallel: bool | None) -> c.ToolChoice:
    disable_parallel: bool | UnsetType = UNSET if parallel is None else not parallel
    if isinstance(choice, str):
        mode = choice if choice in ("auto", "none", "required") else "auto"
        return c.ToolChoice(mode=mode, disable_parallel=disable_parallel)  # type: ignore[arg-type]
    name = choice.function.name if choice.function is not UNSET else ""
    return c.ToolChoice(mode="tool", name=name, disable_parallel=disable_parallel)


def _assistant_blocks(message: ChatMessage) -> list[c.ContentBlock]:
    blocks: list[c.ContentBlock] = []
    if message.reasoning_content:
        blocks.append(c.ThinkingBlock(thinking=message.reasoning_content))
    blocks.extend(content_parts_to_blocks(message.content))
    for call in message.tool_calls or []:
        arguments = parse_arguments(call.function.arguments)
        blocks.append(c.ToolUseBlock(id=call.id, name=call.function.name, input=arguments))
    return blocks


def _tool_result(message: ChatMessage) -> c.ToolResultBlock:
    result_blocks = [
        b
        for b in content_parts_to_blocks(message.content)
        if isinstance(b, c.TextBlock | c.ImageBlock)
    ]
    tool_call_id = message.tool_call_id if message.tool_call_id is not UNSET else ""
    return c.ToolResultBlock(tool_use_id=tool_call_id, content=result_blocks, name=message.name)


def _conversation(request: ChatRequest) -> tuple[list[c.TextBlock], list[c.Message]]:
    """The system prompt and the turns; consecutive messages of one role merge (tool results
    after tool calls, etc.)."""
    system: list[c.TextBlock] = []
    messages: list[c.Message] = []

    def append(role: str, blocks: list[c.ContentBlock]) -> None:
        if messages and messages[-1].role == role:
            messages[-1].content.extend(blocks)
        else:
            messages.append(c.Message(role=role, content=blocks))  # type: ignore[arg-type]

    for message in request.messages:
        if message.role in ("system", "developer"):
            system.extend(
                b for b in content_parts_to_blocks(message.content) if isinstance(b, c.TextBlock)
            )
        elif message.role == "user":
            append("user", content_parts_to_blocks(message.content))
        elif message.role == "assistant":
            append("assistant", _assistant_blocks(message))
        elif message.role in ("tool", "function"):
            append("user", [_tool_result(message)])
    return system, messages


def openai_to_canonical(request: ChatRequest) -> c.Request:
    """A validated OpenAI chat request in canonical form."""
    system, messages = _conversation(request)
    stop: list[str] | UnsetType = UNSET
    if isinstance(request.stop, str):
        stop = [request.stop]
    elif request.stop:
        stop = list(request.stop)

    canonical = c.Request(
        model=request.model,
        messages=messages,
        system=system,
        stream=bool(request.stream),
        stop=stop,
    )
    if request.tools:
        canonical.tools = [
            c.Tool(
                name=tool.function.name,
                description=tool.function.description,
                parameters=tool.function.parameters
                if tool.function.parameters is not UNSET
                else {"type": "object", "properties": {}},
            )
            for tool in request.tools
        ]
    if request.tool_choice is not None:
        canonical.tool_choice = _tool_choice_to_canonical(
            request.tool_choice, request.parallel_tool_calls
        )
    elif request.parallel_tool_calls is not None:
        canonical.tool_choice = c.ToolChoice(disable_parallel=not request.parallel_tool_calls)
    if request.output_limit is not None:
        canonical.max_tokens = request.output_limit
    if request.temperature is not None:
        canonical.temperature = request.temperature
    if request.top_p is not None:
        canonical.top_p = request.top_p
    if request.seed is not None:
        canonical.seed = request.seed
    if request.response_format is not None:
        canonical.response_format = request.response_format
    if request.reasoning_effort is not None:
        canonical.reasoning = c.Reasoning(effort=request.reasoning_effort)
    if request.user is not None:
        canonical.user = request.user
    return canonical


_chat_request = msgspec.json.Decoder(ChatRequest)


def _check(request: ChatRequest) -> None:
    if not request.model:
        raise InvalidRequest(
            "'model' is empty: name a model (GET /v1/models lists them)", param="model"
        )
    check_model_name(request.model)
    if not request.messages:
        raise InvalidRequest("'messages' is empty: send at least one message", param="messages")
    for index, message in enumerate(request.messages):
        if message.role not in REQUEST_ROLES:
            roles = ", ".join(sorted(REQUEST_ROLES))
            raise InvalidRequest(
                f"messages[{index}].role: {message.role!r} is not one of {roles}",
                param=f"messages[{index}].role",
            )


def overlay_openai_body(body: dict[str, Any], overlay: Overlay) -> dict[str, Any]:
    """``body`` (a fresh top-level copy) with the overlay on; nested values are replaced, never
    changed in place, since the caller's parsed body is shared by every fallback."""
    if overlay.system:
        messages = body.get("messages")
        if isinstance(messages, list):
            body["messages"] = [{"role": "system", "content": overlay.system}, *messages]
    # A caller that uses the newer "max_completion_tokens" gets the cap there.
    newer = body.get("max_completion_tokens") is not None
    return overlay_options(body, overlay, "max_completion_tokens" if newer else "max_tokens")


class OpenAIIngress(DialectIngress, dialect="openai", texts=texts, convert=openai_to_canonical,
                    overlay=overlay_openai_body, encode=canonical_to_openai_response,
                    passthrough_reply=inspect_openai_response, error_frame=openai_error_frame):
    """``POST /v1/chat/completions``."""

    def parse(self, body: bytes) -> Parsed:
        """A validated chat-completions body (``InvalidRequest`` names the field at fault)."""
        request: ChatRequest = decode_json(body, _chat_request)
        _check(request)
        return parsed_json(body, request, request.model, bool(request.stream),
                           request.wants_usage, max_tokens=request.output_limit,
                           features_of=openai_features)

    def passthrough_translator(self, parsed: Parsed, served_model: str) -> StreamTranslator:
        return OpenAIPassthrough(served_model, parsed.wants_usage)

    def canonical_translator(
        self, parsed: Parsed, served_model: str, response_id: str
    ) -> StreamTranslator:
        return OpenAIStreamEncoder(response_id, served_model, parsed.wants_usage)


def openai_features(request: ChatRequest) -> RequestFeatures:
    """Routing features of an OpenAI chat request, in one walk over its messages."""
    chars = 0
    images = 0
    audio = False
    last_user: str | list[ContentPart] | UnsetType | None = None
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            chars += len(content)
        elif content:
            for part in content:
                kind = part.type
                if kind == "text":
                    chars += len(part.text) if isinstance(part.text, str) else 0
                elif kind == "image_url":
                    images += 1
                elif kind in ("input_audio", "audio"):
                    audio = True
        for call in message.tool_calls or ():
            chars += len(call.function.arguments)
        if message.role == "user":
            last_user = content

    def text() -> str:
        if isinstance(last_user, str):
            return last_user
        if not last_user:
            return ""
        return "\n".join(
            p.text for p in last_user if p.type == "text" and isinstance(p.text, str)
        )

    return RequestFeatures(
        has_tools=bool(request.tools),
        has_audio=audio,
        prompt_chars=chars,
        images=images,
        max_output=request.output_limit,
        text=text,
    )
