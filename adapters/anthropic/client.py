"""The Anthropic Messages dialect, client side: a caller's body in, canonical form out.

``AnthropicIngress`` parses and validates ``POST /v1/messages`` bodies the way Anthropic does
(``max_tokens`` is required); the answers back are written by ``adapters.anthropic.encode``.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from adapters import canonical as c
from adapters.anthropic import texts
from adapters.anthropic.encode import (
    AnthropicPassthrough,
    AnthropicStreamEncoder,
    anthropic_error_frame,
    canonical_to_anthropic_response,
    inspect_anthropic_response,
)
from adapters.anthropic.wire import (
    AnthropicMessage,
    Block,
    CountTokensRequest,
    MessagesRequest,
    Source,
    Thinking,
    Tool,
    ToolChoice,
)
from adapters.base import StreamTranslator
from adapters.client import (
    DialectIngress,
    Parsed,
    check_model_name,
    decode_json,
    parsed_json,
)
from adapters.errors import InvalidRequest
from adapters.overlay import Overlay, overlay_options

# --- ingress: Anthropic request -> canonical ------------------------------------------------


def _image(block: Block) -> c.ImageBlock | None:
    source = block.source
    if not isinstance(source, Source):
        return None
    if source.type == "base64":
        return c.ImageBlock(
            data=source.data if source.data is not UNSET else "",
            media_type=source.media_type if source.media_type is not UNSET else "image/png",
            cache_control=block.cache_control,
        )
    if source.type == "url":
        url = source.url if source.url is not UNSET else ""
        return c.ImageBlock(url=url, cache_control=block.cache_control)
    return None


def _text(block: Block) -> c.TextBlock:
    citations = block.citations
    return c.TextBlock(
        text=block.text if block.text is not UNSET else "",
        cache_control=block.cache_control,
        citations=citations if isinstance(citations, list) else UNSET,
    )


def _document(block: Block) -> c.TextBlock | None:
    """A plain-text document becomes text; PDFs have no canonical form and are dropped."""
    source = block.source
    if isinstance(source, Source) and source.type == "text":
        text = source.data if source.data is not UNSET else ""
        title = block.title
        return c.TextBlock(text=f"{title}\n\n{text}" if title else text)
    return None


def _tool_result(block: Block) -> c.ToolResultBlock:
    content = block.content
    parts: list[c.TextBlock | c.ImageBlock] = []
    if isinstance(content, str):
        if content:
            parts.append(c.TextBlock(text=content))
    elif isinstance(content, list):
        for item in content:
            if item.type == "text":
                parts.append(_text(item))
            elif item.type == "image" and (image := _image(item)) is not None:
                parts.append(image)
            elif item.type == "document" and (doc := _document(item)) is not None:
                parts.append(doc)
    return c.ToolResultBlock(
        tool_use_id=block.tool_use_id if block.tool_use_id is not UNSET else "",
        content=parts,
        is_error=block.is_error is True,
        cache_control=block.cache_control,
    )


def _block_to_canonical(block: Block) -> c.ContentBlock | None:
    kind = block.type
    if kind == "text":
        return _text(block)
    if kind == "image":
        return _image(block)
    if kind == "document":
        return _document(block)
    if kind == "tool_use":
        return c.ToolUseBlock(
            id=block.id if block.id is not UNSET else "",
            name=block.name if block.name is not UNSET else "",
            input=block.input if block.input is not UNSET else {},
            cache_control=block.cache_control,
        )
    if kind == "tool_result":
        return _tool_result(block)
    if kind == "thinking":
        return c.ThinkingBlock(
            thinking=block.thinking if block.thinking is not UNSET else "",
            signature=block.signature if block.signature else UNSET,
        )
    if kind == "redacted_thinking":
        return c.RedactedThinkingBlock(data=block.data if block.data is not UNSET else "")
    return None


def anthropic_blocks_to_canonical(content: str | list[Block]) -> list[c.ContentBlock]:
    """One Anthropic message's content as canonical blocks (unknown block types are dropped)."""
    if isinstance(content, str):
        return [c.TextBlock(text=content)] if content else []
    return [out for block in content if (out := _block_to_canonical(block)) is not None]


def anthropic_system_to_canonical(system: str | list[Block] | None) -> list[c.TextBlock]:
    if system is None:
        return []
    if isinstance(system, str):
        return [c.TextBlock(text=system)] if system else []
    return [
        _text(block)
        for block in system
        if block.type == "text"
        # Claude Code's attribution line is for Anthropic alone; elsewhere it only breaks the
        # prompt prefix that providers cache.
        and not (block.text or "").startswith("x-anthropic-billing-header:")
    ]


def anthropic_tools_to_canonical(tools: list[Tool]) -> list[c.Tool]:
    """Client tools; Anthropic's server tools (web search, code execution…) have no
    equivalent elsewhere and are dropped."""
    return [
        c.Tool(
            name=tool.name,
            description=tool.description,
            parameters=tool.input_schema if tool.input_schema is not UNSET else {"type": "object"},
            cache_control=tool.cache_control,
        )
        for tool in tools
        if tool.type in (UNSET, "custom") and tool.name is not UNSET
    ]


_CHOICE_MODES = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}


def anthropic_tool_choice_to_canonical(choice: ToolChoice) -> c.ToolChoice:
    mode = _CHOICE_MODES.get(choice.type, "auto")
    return c.ToolChoice(
        mode=mode,  # type: ignore[arg-type]
        name=choice.name if mode == "tool" else UNSET,
        disable_parallel=choice.disable_parallel_tool_use,
    )


def anthropic_thinking_to_canonical(
    thinking: Thinking, effort: str | None = None
) -> c.Reasoning | UnsetType:
    """``thinking`` (a budget, or ``adaptive`` at ``output_config.effort``) as reasoning."""
    if thinking.type == "enabled":
        budget = thinking.budget_tokens
        return c.Reasoning(budget_tokens=budget if budget is not UNSET else 1024)
    if thinking.type == "adaptive":
        # Anthropic's effort levels are low, medium, high and max; OpenAI's stop at high.
        return c.Reasoning(effort="high" if effort == "max" else effort or "medium")
    return UNSET


def _output_format(output_config: dict[str, Any]) -> dict[str, Any] | UnsetType:
    """Anthropic's structured output (``output_config.format``) as OpenAI's response_format."""
    spec = output_config.get("format")
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        schema = spec.get("schema")
        return {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema if isinstance(schema, dict) else {}},
        }
    return UNSET


def anthropic_to_canonical(request: MessagesRequest) -> c.Request:
    """A validated Anthropic Messages request in canonical form."""
    messages: list[c.Message] = []
    system = anthropic_system_to_canonical(request.system)
    for message in request.messages:
        if message.role == "system":
            # Claude Code's mid-conversation system messages: other dialects have one system
            # prompt, so they join it.
            system.extend(anthropic_system_to_canonical(message.content))
            continue
        blocks = anthropic_blocks_to_canonical(message.content)
        role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" else "user"
        if messages and messages[-1].role == role:
            messages[-1].content.extend(blocks)
        else:
            messages.append(c.Message(role=role, content=blocks))
    canonical = c.Request(
        model=request.model,
        messages=messages,
        system=system,
        stream=bool(request.stream),
    )
    if request.max_tokens is not None:
        canonical.max_tokens = request.max_tokens
    if request.stop_sequences:
        canonical.stop = list(request.stop_sequences)
    if request.temperature is not None:
        canonical.temperature = request.temperature
    if request.top_p is not None:
        canonical.top_p = request.top_p
    if request.top_k is not None:
        canonical.top_k = request.top_k
    if request.tools:
        canonical.tools = anthropic_tools_to_canonical(request.tools)
    if request.tool_choice is not None:
        canonical.tool_choice = anthropic_tool_choice_to_canonical(request.tool_choice)
    output_config = request.output_config or {}
    if request.thinking is not None:
        effort = output_config.get("effort")
        canonical.reasoning = anthropic_thinking_to_canonical(
            request.thinking, effort if isinstance(effort, str) else None
        )
    if output_config:
        canonical.response_format = _output_format(output_config)
    user = (request.metadata or {}).get("user_id")
    if isinstance(user, str) and len(user) <= 64:  # OpenAI's limit; Claude Code's ids are longer
        canonical.user = user
    return canonical


_messages_request = msgspec.json.Decoder(MessagesRequest)
_ROLES = ("user", "assistant", "system")  # system: Claude Code's mid-conversation messages
_SOURCED = ("image", "document")


def _check_block(block: Block, where: str) -> None:
    if block.type in _SOURCED and not isinstance(block.source, Source):
        raise InvalidRequest(f"{where}.source: Input should be an object",
                             param=f"{where}.source")
    if block.type == "tool_result" and isinstance(block.content, list):
        for number, item in enumerate(block.content):
            _check_block(item, f"{where}.content.{number}")


def check_messages(messages: list[AnthropicMessage]) -> None:
    """Anthropic's checks on ``messages``, with its wording: roles, and the shape of the blocks
    the gateway reads (a block it would misread is refused here, never a 500 later)."""
    if not messages:
        raise InvalidRequest("messages: at least one message is required", param="messages")
    for index, message in enumerate(messages):
        if message.role not in _ROLES:
            raise InvalidRequest(
                f"messages.{index}.role: Input should be 'user', 'assistant' or 'system'",
                param=f"messages.{index}.role",
            )
        if isinstance(message.content, list):
            for number, block in enumerate(message.content):
                _check_block(block, f"messages.{index}.content.{number}")


def _check_thinking(request: MessagesRequest, max_tokens: int) -> None:
    thinking = request.thinking
    if thinking is None or thinking.type != "enabled":
        return
    budget = thinking.budget_tokens
    if budget is UNSET or budget < 1024:
        raise InvalidRequest(
            "thinking.budget_tokens: must be an integer of at least 1024",
            param="thinking.budget_tokens",
        )
    if budget >= max_tokens:
        raise InvalidRequest(
            "max_tokens must be greater than thinking.budget_tokens", param="max_tokens"
        )


def overlay_anthropic_body(body: dict[str, Any], overlay: Overlay) -> dict[str, Any]:
    """``body`` (a fresh top-level copy) with the overlay on; nested values are replaced, never
    changed in place, since the caller's parsed body is shared by every fallback."""
    if overlay.system:
        system = body.get("system")
        if isinstance(system, list):
            body["system"] = [{"type": "text", "text": overlay.system}, *system]
        elif isinstance(system, str) and system:
            body["system"] = f"{overlay.system}\n\n{system}"
        else:
            body["system"] = overlay.system
    return overlay_options(body, overlay, "max_tokens")


class AnthropicIngress(DialectIngress, dialect="anthropic", texts=texts,
                       convert=anthropic_to_canonical, overlay=overlay_anthropic_body,
                       encode=canonical_to_anthropic_response,
                       passthrough_reply=inspect_anthropic_response,
                       error_frame=anthropic_error_frame):
    """``POST /v1/messages``."""

    def parse(self, body: bytes) -> Parsed:
        """A validated Messages body (``InvalidRequest`` in Anthropic's wording)."""
        request: MessagesRequest = decode_json(body, _messages_request)
        if not request.model:
            raise InvalidRequest("model: name a model (GET /v1/models lists them)", param="model")
        check_model_name(request.model)
        if request.max_tokens is None:
            raise InvalidRequest(
                "max_tokens: Field required (the most tokens the answer may have)",
                param="max_tokens",
            )
        check_messages(request.messages)
        _check_thinking(request, request.max_tokens)
        return parsed_json(body, request, request.model, bool(request.stream), True,
                           max_tokens=request.max_tokens)

    def passthrough_translator(self, parsed: Parsed, served_model: str) -> StreamTranslator:
        return AnthropicPassthrough(served_model)

    def canonical_translator(
        self, parsed: Parsed, served_model: str, response_id: str
    ) -> StreamTranslator:
        return AnthropicStreamEncoder(response_id, served_model)


# --- count_tokens ---------------------------------------------------------------------------

count_request = msgspec.json.Decoder(CountTokensRequest)


def count_request_to_canonical(request: CountTokensRequest) -> c.Request:
    """A count_tokens body as the canonical request it counts."""
    return anthropic_to_canonical(
        MessagesRequest(
            model=request.model,
            messages=request.messages,
            system=request.system,
            tools=request.tools,
            tool_choice=request.tool_choice,
        )
    )


def estimate_input_tokens(request: CountTokensRequest) -> int:
    """About four characters a token over everything the model reads, images at a flat 1,600
    (Anthropic's cost of a ~1.15 megapixel image). An estimate, not a tokenizer."""
    canonical = count_request_to_canonical(request)
    chars = sum(len(block.text) for block in canonical.system)
    images = 0
    for message in canonical.messages:
        for block in message.content:
            if isinstance(block, c.TextBlock):
                chars += len(block.text)
            elif isinstance(block, c.ImageBlock):
                images += 1
            elif isinstance(block, c.ToolUseBlock):
                chars += len(block.name) + len(msgspec.json.encode(block.input))
            elif isinstance(block, c.ToolResultBlock):
                for part in block.content:
                    if isinstance(part, c.TextBlock):
                        chars += len(part.text)
                    else:
                        images += 1
            elif isinstance(block, c.ThinkingBlock):
                chars += len(block.thinking)
    for tool in request.tools or []:
        chars += len(msgspec.json.encode(tool))
    return max(1, (chars + 3) // 4) + images * 1600 + 4 * len(canonical.messages)
