"""A Responses API request in canonical form (``responses_to_canonical``).

``instructions`` become the first system text; input messages of ``system``/``developer`` role
join it; ``function_call`` items are tool-use blocks of an assistant turn and
``function_call_output`` items tool results of a user turn. Reasoning items a client replays are
dropped: they carry the upstream's private state, which no other upstream can read. What the
canonical model cannot express (built-in tools, stored items by reference) is an
``InvalidRequest`` naming it. ``previous_response_id`` is the gateway's to resolve before
(``gateway.responses``): by then ``input`` holds the whole conversation.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, UnsetType

from adapters import canonical as c
from adapters.errors import InvalidRequest
from adapters.openai.wire import image_block, parse_arguments
from adapters.responses.wire import InputItem, NamedChoice, Part, ResponsesRequest

_TEXT_PARTS = ("input_text", "output_text", "text", "summary_text")
ROLES = ("user", "assistant", "system", "developer")


def _file_block(part: Part, where: str) -> c.ContentBlock:
    """An ``input_file`` part: inline PDF/image data is an image-like block upstreams that take
    documents read; a file by id or URL has no canonical form."""
    data = part.file_data
    if data is UNSET or not data.startswith("data:"):
        raise InvalidRequest(
            f"{where}: only inline 'file_data' (a data: URL) can be translated; 'file_id' and "
            "'file_url' need a Responses upstream", param=where,
        )
    return image_block(data)


def _part_to_block(part: Part, where: str) -> c.ContentBlock | None:
    kind = part.type
    if kind in _TEXT_PARTS:
        return c.TextBlock(text=part.text if part.text is not UNSET else "")
    if kind == "refusal":
        return c.TextBlock(text=part.refusal if part.refusal is not UNSET else "")
    if kind == "input_image":
        if part.image_url is UNSET:
            raise InvalidRequest(
                f"{where}: 'input_image' needs 'image_url' (a URL or a data: URL); images by "
                "'file_id' need a Responses upstream", param=where,
            )
        return image_block(part.image_url, part.detail)
    if kind == "input_file":
        return _file_block(part, where)
    raise InvalidRequest(f"{where}.type: content part {kind!r} is not supported",
                         param=f"{where}.type")


def parts_to_blocks(
    content: str | list[Part] | UnsetType | None, where: str
) -> list[c.ContentBlock]:
    """A message's content (a string or parts) as canonical blocks."""
    if content is UNSET or content is None:
        return []
    if isinstance(content, str):
        return [c.TextBlock(text=content)] if content else []
    blocks = []
    for index, part in enumerate(content):
        block = _part_to_block(part, f"{where}[{index}]")
        if block is not None:
            blocks.append(block)
    return blocks


def _tool_result(item: InputItem, where: str) -> c.ToolResultBlock:
    if item.call_id is UNSET:
        raise InvalidRequest(f"{where}: 'function_call_output' needs 'call_id'",
                             param=f"{where}.call_id")
    blocks = parts_to_blocks(item.output, f"{where}.output")
    content = [b for b in blocks if isinstance(b, c.TextBlock | c.ImageBlock)]
    return c.ToolResultBlock(tool_use_id=item.call_id, content=content)


def _tool_use(item: InputItem, where: str) -> c.ToolUseBlock:
    if item.call_id is UNSET or item.name is UNSET:
        raise InvalidRequest(f"{where}: 'function_call' needs 'call_id' and 'name'", param=where)
    arguments = item.arguments if item.arguments is not UNSET else "{}"
    return c.ToolUseBlock(id=item.call_id, name=item.name, input=parse_arguments(arguments))


def _conversation(request: ResponsesRequest) -> tuple[list[c.TextBlock], list[c.Message]]:
    system = [c.TextBlock(text=request.instructions)] if request.instructions else []
    if isinstance(request.input, str):
        turns = [c.Message(role="user", content=[c.TextBlock(text=request.input)])]
        return system, turns if request.input else []
    messages: list[c.Message] = []

    def append(role: str, blocks: list[c.ContentBlock]) -> None:
        if messages and messages[-1].role == role:
            messages[-1].content.extend(blocks)
        elif blocks:
            messages.append(c.Message(role=role, content=blocks))  # type: ignore[arg-type]

    for index, item in enumerate(request.input):
        where = f"input[{index}]"
        if item.type == "message":
            role = item.role if item.role is not UNSET else ""
            if role not in ROLES:
                raise InvalidRequest(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}",
                                     param=f"{where}.role")
            blocks = parts_to_blocks(item.content, f"{where}.content")
            if role in ("system", "developer"):
                system.extend(b for b in blocks if isinstance(b, c.TextBlock))
            else:
                append(role, blocks)
        elif item.type == "function_call":
            append("assistant", [_tool_use(item, where)])
        elif item.type == "function_call_output":
            append("user", [_tool_result(item, where)])
        elif item.type != "reasoning":
            raise InvalidRequest(
                f"{where}.type: input item {item.type!r} cannot be translated for this model "
                "(send messages, function_call and function_call_output items)",
                param=f"{where}.type",
            )
    return system, messages


def _tools(request: ResponsesRequest) -> list[c.Tool]:
    tools = []
    for index, tool in enumerate(request.tools or []):
        if tool.type != "function":
            raise InvalidRequest(
                f"tools[{index}].type: the built-in tool {tool.type!r} is not available for "
                "this model (only 'function' tools are)", param=f"tools[{index}].type",
            )
        if tool.name is UNSET or not tool.name:
            raise InvalidRequest(f"tools[{index}].name is missing", param=f"tools[{index}].name")
        parameters = tool.parameters or {"type": "object", "properties": {}}
        description: str | UnsetType = tool.description if tool.description else UNSET
        tools.append(c.Tool(name=tool.name, description=description, parameters=parameters))
    return tools


def _tool_choice(choice: str | NamedChoice | None, parallel: bool | None) -> c.ToolChoice | None:
    disable: bool | UnsetType = UNSET if parallel is None else not parallel
    if choice is None:
        return None if parallel is None else c.ToolChoice(disable_parallel=disable)
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidRequest(f"'tool_choice' must be auto, none or required, not {choice!r}",
                                 param="tool_choice")
        return c.ToolChoice(mode=choice, disable_parallel=disable)  # type: ignore[arg-type]
    if choice.type == "function" and choice.name is not UNSET:
        return c.ToolChoice(mode="tool", name=choice.name, disable_parallel=disable)
    if choice.type == "allowed_tools":
        return c.ToolChoice(disable_parallel=disable)
    raise InvalidRequest(f"'tool_choice' of type {choice.type!r} is not available for this "
                         "model", param="tool_choice.type")


def _response_format(request: ResponsesRequest) -> dict[str, Any] | None:
    if request.text is None or request.text.format is UNSET:
        return None
    fmt = request.text.format
    if fmt.type == "json_object":
        return {"type": "json_object"}
    if fmt.type == "json_schema":
        if fmt.schema is UNSET:
            raise InvalidRequest("'text.format.schema' is missing", param="text.format.schema")
        spec: dict[str, Any] = {"name": fmt.name if fmt.name is not UNSET else "response",
                                "schema": fmt.schema}
        if fmt.strict is not None:
            spec["strict"] = fmt.strict
        return {"type": "json_schema", "json_schema": spec}
    if fmt.type == "text":
        return None
    raise InvalidRequest(f"'text.format.type' must be text, json_object or json_schema, not "
                         f"{fmt.type!r}", param="text.format.type")


def responses_to_canonical(request: ResponsesRequest) -> c.Request:
    """A validated Responses request in canonical form."""
    system, messages = _conversation(request)
    if not messages:
        raise InvalidRequest("'input' holds no message: send a string or at least one item",
                             param="input")
    canonical = c.Request(model=request.model, messages=messages, system=system,
                          stream=bool(request.stream))
    if request.tools:
        canonical.tools = _tools(request)
    choice = _tool_choice(request.tool_choice, request.parallel_tool_calls)
    if choice is not None:
        canonical.tool_choice = choice
    if request.max_output_tokens is not None:
        canonical.max_tokens = request.max_output_tokens
    if request.temperature is not None:
        canonical.temperature = request.temperature
    if request.top_p is not None:
        canonical.top_p = request.top_p
    response_format = _response_format(request)
    if response_format is not None:
        canonical.response_format = response_format
    if request.reasoning is not None and request.reasoning.effort:
        canonical.reasoning = c.Reasoning(effort=request.reasoning.effort)
    user = request.safety_identifier or request.user
    if user:
        canonical.user = user
    return canonical
