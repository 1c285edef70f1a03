"""The Gemini ``generateContent`` dialect: pure conversions from and to the canonical model.

``canonical_to_gemini_request`` builds a body, ``gemini_response_to_canonical`` reads an answer
and ``GeminiChunkDecoder`` turns ``streamGenerateContent?alt=sse`` chunks into canonical events.

Thought signatures: Gemini attaches an opaque ``thoughtSignature`` to function calls and
requires it back on the same part next turn. Clients in other dialects only echo a tool call's
``id``, so the signature travels inside it: ``pack_tool_id`` appends it (URL-safe base64, which
fits Anthropic's and OpenAI's id alphabets) and ``unpack_tool_id`` takes it out again. The
canonical ``ToolUseBlock.signature`` holds it too, for callers that keep it separately.

Usage: ``promptTokenCount`` includes cached tokens (as canonical input does);
``candidatesTokenCount`` excludes thinking, so canonical output adds ``thoughtsTokenCount``.

No I/O here: the HTTP client is ``adapters.gemini_provider``.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from adapters import canonical as c
from adapters.base import has_value
from adapters.errors import ProviderConnectionError, ProviderHTTPError, ProviderProtocolError

_encode = msgspec.json.encode
SIGNATURE_MARK = "__sig_"
# Google's documented stand-in for a function call whose signature was never seen (history
# from another model): without one, Gemini 3 refuses the request.
SKIP_SIGNATURE = "skip_thought_signature_validator"
EFFORT_BUDGET = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


def pack_tool_id(call_id: str, signature: str) -> str:
    """A tool-call id that carries Gemini's thought signature through any client."""
    if not signature:
        return call_id
    safe = signature.replace("+", "-").replace("/", "_").rstrip("=")
    return f"{call_id}{SIGNATURE_MARK}{safe}"


def unpack_tool_id(packed: str) -> tuple[str, str]:
    """The original id and the signature ``pack_tool_id`` put in it ("" if none)."""
    call_id, mark, safe = packed.partition(SIGNATURE_MARK)
    if not mark:
        return packed, ""
    signature = safe.replace("-", "+").replace("_", "/")
    return call_id, signature + "=" * (-len(signature) % 4)


# --- finish reasons and usage ---------------------------------------------------------------

_FINISH: dict[str, c.StopReason] = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "refusal",
    "RECITATION": "refusal",
    "BLOCKLIST": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "SPII": "refusal",
    "IMAGE_SAFETY": "refusal",
}


def gemini_finish_to_canonical(reason: str | None, called_tools: bool) -> c.StopReason:
    if called_tools and reason in (None, "STOP"):
        return "tool_use"
    return _FINISH.get(reason or "STOP", "end_turn")


class UsageWire(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    cached_content_token_count: int = 0
    thoughts_token_count: int = 0
    tool_use_prompt_token_count: int = 0


def gemini_usage_to_canonical(usage: UsageWire) -> c.Usage:
    return c.Usage(
        input_tokens=usage.prompt_token_count + usage.tool_use_prompt_token_count,
        output_tokens=usage.candidates_token_count + usage.thoughts_token_count,
        cache_read_tokens=usage.cached_content_token_count,
        reasoning_tokens=usage.thoughts_token_count,
    )


# --- upstream: canonical -> Gemini request --------------------------------------------------


class _Blob(msgspec.Struct, rename="camel"):
    mime_type: str
    data: str


class _FileData(msgspec.Struct, rename="camel"):
    mime_type: str
    file_uri: str


class _FunctionCall(msgspec.Struct, omit_defaults=True):
    name: str
    args: dict[str, Any]
    id: str | UnsetType = UNSET


class _FunctionResponse(msgspec.Struct, omit_defaults=True):
    name: str
    response: dict[str, str]
    id: str | UnsetType = UNSET


class Part(msgspec.Struct, rename="camel", omit_defaults=True):
    """One part of a Gemini message: exactly one of its kinds is set."""

    text: str | UnsetType = UNSET
    inline_data: _Blob | UnsetType = UNSET
    file_data: _FileData | UnsetType = UNSET
    function_call: _FunctionCall | UnsetType = UNSET
    function_response: _FunctionResponse | UnsetType = UNSET
    thought_signature: str | UnsetType = UNSET


class Content(msgspec.Struct, omit_defaults=True):
    parts: list[Part]
    role: str | UnsetType = UNSET  # the system instruction has none


class _FunctionDeclaration(msgspec.Struct, rename="camel", omit_defaults=True):
    name: str
    description: str | UnsetType = UNSET
    parameters_json_schema: dict[str, Any] | UnsetType = UNSET


class _Tool(msgspec.Struct, rename="camel"):
    function_declarations: list[_FunctionDeclaration]


class _FunctionCallingConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    mode: str
    allowed_function_names: list[str] | UnsetType = UNSET


class _ToolConfig(msgspec.Struct, rename="camel"):
    function_calling_config: _FunctionCallingConfig


class _ThinkingConfig(msgspec.Struct, rename="camel"):
    thinking_budget: int
    include_thoughts: bool


class _GenerationConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    max_output_tokens: int | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    top_k: int | UnsetType = UNSET
    seed: int | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET
    response_mime_type: str | UnsetType = UNSET
    response_json_schema: dict[str, Any] | UnsetType = UNSET
    thinking_config: _ThinkingConfig | UnsetType = UNSET


class GenerateContentBody(msgspec.Struct, rename="camel", omit_defaults=True):
    """A ``generateContent`` body, built from a canonical request (the model is in the URL)."""

    contents: list[Content]
    system_instruction: Content | UnsetType = UNSET
    tools: list[_Tool] | UnsetType = UNSET
    tool_config: _ToolConfig | UnsetType = UNSET
    generation_config: _GenerationConfig | UnsetType = UNSET


def _image_part(block: c.ImageBlock) -> Part:
    if block.url is not UNSET:
        url = block.url
        if url.startswith("data:") and ";base64," in url:
            mime, data = url[5:].split(";base64,", 1)
            return Part(inline_data=_Blob(mime or "image/png", data))
        mime = block.media_type if block.media_type is not UNSET else _guess_mime(url)
        return Part(file_data=_FileData(mime, url))
    mime = block.media_type if block.media_type is not UNSET else "image/png"
    return Part(inline_data=_Blob(mime, block.data or ""))


def _guess_mime(url: str) -> str:
    lowered = url.lower().split("?")[0]
    for ending, mime in ((".png", "image/png"), (".gif", "image/gif"), (".webp", "image/webp")):
        if lowered.endswith(ending):
            return mime
    return "image/jpeg"


def _result_response(block: c.ToolResultBlock) -> dict[str, str]:
    text = "".join(part.text for part in block.content if isinstance(part, c.TextBlock))
    return {"error": text or "error"} if block.is_error else {"result": text}


def _gemini_id(call_id: str) -> str | UnsetType:
    """The call's own id, sent back; ids the gateway made up for Gemini are not Gemini's."""
    return call_id if call_id and not call_id.startswith("call_gemini_") else UNSET


def _parts(message: c.Message, names: dict[str, str]) -> list[Part]:
    parts: list[Part] = []
    pending_signature = ""  # a signed, empty thinking block stands for the next call's signature
    first_call_seen = False
    for block in message.content:
        if isinstance(block, c.TextBlock):
            if block.text:
                parts.append(Part(text=block.text))
        elif isinstance(block, c.ImageBlock):
            parts.append(_image_part(block))
        elif isinstance(block, c.AudioBlock):
            parts.append(Part(inline_data=_Blob(f"audio/{block.format or 'wav'}", block.data)))
        elif isinstance(block, c.ThinkingBlock):
            if block.signature is not UNSET and block.signature and not block.thinking:
                pending_signature = block.signature
        elif isinstance(block, c.ToolUseBlock):
            call_id, signature = unpack_tool_id(block.id)
            if not signature and block.signature is not UNSET:
                signature = block.signature
            signature = signature or pending_signature
            pending_signature = ""
            names[block.id] = block.name
            part = Part(function_call=_FunctionCall(block.name, block.input, _gemini_id(call_id)))
            if signature or not first_call_seen:
                # Gemini signs only the first of parallel calls, and checks only that one.
                part.thought_signature = signature or SKIP_SIGNATURE
            first_call_seen = True
            parts.append(part)
        elif isinstance(block, c.ToolResultBlock):
            call_id, _ = unpack_tool_id(block.tool_use_id)
            name = block.name if block.name is not UNSET else names.get(block.tool_use_id, "")
            response = _FunctionResponse(name, _result_response(block), _gemini_id(call_id))
            parts.append(Part(function_response=response))
            parts.extend(
                _image_part(part) for part in block.content if isinstance(part, c.ImageBlock)
            )
    return parts


def _schema(parameters: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema as Gemini's ``parametersJsonSchema`` takes it (``$schema`` is refused)."""
    return {k: v for k, v in parameters.items() if k != "$schema"}


def _contents(request: c.Request) -> list[Content]:
    """The conversation, consecutive turns of one role joined."""
    names: dict[str, str] = {}
    contents: list[Content] = []
    for message in request.messages:
        parts = _parts(message, names)
        if not parts:
            continue
        role = "model" if message.role == "assistant" else "user"
        if contents and contents[-1].role == role:
            contents[-1].parts.extend(parts)
        else:
            contents.append(Content(parts=parts, role=role))
    return contents


def _declaration(tool: c.Tool) -> _FunctionDeclaration:
    schema = _schema(tool.parameters) if tool.parameters.get("properties") else UNSET
    return _FunctionDeclaration(tool.name, tool.description, schema)


def _tool_config(choice: c.ToolChoice) -> _ToolConfig:
    mode = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}[choice.mode]
    names = [choice.name] if choice.mode == "tool" and choice.name is not UNSET else UNSET
    return _ToolConfig(_FunctionCallingConfig(mode, names))


def _generation(request: c.Request) -> _GenerationConfig | UnsetType:
    generation = _GenerationConfig(
        max_output_tokens=request.max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=request.top_k,
        seed=request.seed,
        stop_sequences=request.stop[:5] if request.stop is not UNSET and request.stop else UNSET,
    )
    if request.response_format is not UNSET:
        kind = request.response_format.get("type")
        if kind in ("json_object", "json_schema"):
            generation.response_mime_type = "application/json"
            schema = (request.response_format.get("json_schema") or {}).get("schema")
            if isinstance(schema, dict):
                generation.response_json_schema = _schema(schema)
    if request.reasoning is not UNSET:
        budget = request.reasoning.budget_tokens
        if budget is UNSET and request.reasoning.effort is not UNSET:
            budget = EFFORT_BUDGET.get(request.reasoning.effort, 8192)
        if budget is not UNSET:
            generation.thinking_config = _ThinkingConfig(budget, budget > 0)
    return generation if generation != _NO_GENERATION else UNSET


_NO_GENERATION = _GenerationConfig()


def canonical_to_gemini_request(request: c.Request) -> GenerateContentBody:
    """A canonical request as a Gemini ``generateContent`` body (the model goes in the URL),
    a Struct: the provider encodes it once per call, nobody changes it."""
    body = GenerateContentBody(contents=_contents(request), generation_config=_generation(request))
    if request.system:
        body.system_instruction = Content(parts=[Part(text=c.text_of(request.system))])
    if request.tools is not UNSET and request.tools:
        body.tools = [_Tool([_declaration(tool) for tool in request.tools])]
        if request.tool_choice is not UNSET:
            body.tool_config = _tool_config(request.tool_choice)
    return body


# --- upstream: Gemini response -> canonical -------------------------------------------------


class FunctionCallWire(msgspec.Struct):
    name: str = ""
    args: dict[str, Any] = {}
    id: str | None = None


class PartWire(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool | None = None
    thought_signature: str | None = None
    function_call: FunctionCallWire | None = None


class ContentWire(msgspec.Struct):
    parts: list[PartWire] = []
    role: str = "model"


class CandidateWire(msgspec.Struct, rename="camel"):
    content: ContentWire | None = None
    finish_reason: str | None = None


class ResponseWire(msgspec.Struct, rename="camel"):
    candidates: list[CandidateWire] = []
    usage_metadata: UsageWire | None = None
    model_version: str = ""
    response_id: str = ""
    error: msgspec.Raw = msgspec.Raw()  # empty when absent


_response_wire = msgspec.json.Decoder(ResponseWire)


def _decode(body: bytes) -> ResponseWire:
    try:
        wire = _response_wire.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProviderProtocolError(f"malformed Gemini answer: {exc}") from exc
    if has_value(wire.error):
        error = msgspec.json.decode(wire.error)
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        status = code if isinstance(code, int) and code >= 400 else 502
        raise ProviderHTTPError(status, str(error.get("message", "error mid-stream")))
    return wire


def _tool_use(call: FunctionCallWire, signature: str | None) -> c.ToolUseBlock:
    call_id = call.id or "call_gemini_" + os.urandom(6).hex()
    return c.ToolUseBlock(
        id=pack_tool_id(call_id, signature or ""),
        name=call.name,
        input=call.args,
        signature=signature or UNSET,
    )


def gemini_response_to_canonical(body: bytes) -> c.Response:
    """A ``generateContent`` answer in canonical form (first candidate)."""
    wire = _decode(body)
    blocks: list[c.ContentBlock] = []
    finish: str | None = None
    if wire.candidates:
        candidate = wire.candidates[0]
        finish = candidate.finish_reason
        for part in candidate.content.parts if candidate.content else []:
            if part.function_call is not None:
                blocks.append(_tool_use(part.function_call, part.thought_signature))
            elif part.text is not None and part.thought:
                signature = part.thought_signature or UNSET
                blocks.append(c.ThinkingBlock(thinking=part.text, signature=signature))
            elif part.text:
                blocks.append(c.TextBlock(text=part.text))
    called = any(isinstance(block, c.ToolUseBlock) for block in blocks)
    return c.Response(
        id=wire.response_id or "gemini",
        model=wire.model_version,
        content=blocks,
        stop_reason=gemini_finish_to_canonical(finish, called),
        usage=gemini_usage_to_canonical(wire.usage_metadata) if wire.usage_metadata else c.Usage(),
    )


class GeminiChunkDecoder:
    """``streamGenerateContent?alt=sse`` payloads -> canonical events, block indices assigned.

    Each chunk is a whole response holding only the new parts: text and thought parts are
    deltas of an open block; a function call arrives whole and is a block of its own.
    """

    def __init__(self) -> None:
        self._started = False
        self._next = 0
        self._open: tuple[str, int] | None = None
        self._finish: str | None = None
        self._called = False
        self._usage: c.Usage | None = None
        self._closed = False

    def _stop_open(self, events: list[c.StreamEvent]) -> None:
        if self._open is not None:
            events.append(c.BlockStop(index=self._open[1]))
            self._open = None

    def _block(self, kind: str, events: list[c.StreamEvent]) -> int:
        if self._open is not None and self._open[0] == kind:
            return self._open[1]
        self._stop_open(events)
        index = self._next
        self._next += 1
        self._open = (kind, index)
        start = c.ThinkingStart() if kind == "thinking" else c.TextStart()
        events.append(c.BlockStart(index=index, block=start))
        return index

    def feed(self, data: bytes) -> list[c.StreamEvent]:
        wire = _decode(data)
        events: list[c.StreamEvent] = []
        if not self._started:
            self._started = True
            events.append(c.MessageStart(id=wire.response_id or "gemini", model=wire.model_version))
        for candidate in wire.candidates[:1]:
            for part in candidate.content.parts if candidate.content else []:
                if part.function_call is not None:
                    self._stop_open(events)
                    self._called = True
                    block = _tool_use(part.function_call, part.thought_signature)
                    index = self._next
                    self._next += 1
                    start = c.ToolUseStart(id=block.id, name=block.name, signature=block.signature)
                    events.append(c.BlockStart(index=index, block=start))
                    args = c.ToolArgsDelta(partial_json=_encode(block.input).decode())
                    events.append(c.BlockDelta(index=index, delta=args))
                    events.append(c.BlockStop(index=index))
                elif part.thought:
                    index = self._block("thinking", events)
                    if part.text:
                        delta = c.ThinkingDelta(thinking=part.text)
                        events.append(c.BlockDelta(index=index, delta=delta))
                    if part.thought_signature:
                        signed = c.SignatureDelta(signature=part.thought_signature)
                        events.append(c.BlockDelta(index=index, delta=signed))
                elif part.text:
                    index = self._block("text", events)
                    events.append(c.BlockDelta(index=index, delta=c.TextDelta(text=part.text)))
            if candidate.finish_reason:
                self._finish = candidate.finish_reason
        if wire.usage_metadata is not None:
            self._usage = gemini_usage_to_canonical(wire.usage_metadata)
            events.append(c.UsageUpdate(usage=self._usage))
        return events

    def close(self) -> list[c.StreamEvent]:
        if self._closed:
            return []
        self._closed = True
        if self._finish is None:
            # Gemini's last chunk always has a finish reason: without one the stream was cut.
            raise ProviderConnectionError("the stream ended without a finish reason")
        events: list[c.StreamEvent] = []
        self._stop_open(events)
        events.append(c.Finish(stop_reason=gemini_finish_to_canonical(self._finish, self._called)))
        return events
