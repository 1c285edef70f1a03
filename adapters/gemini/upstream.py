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
from msgspec import UNSET

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


def new_call_id() -> str:
    return "call_" + os.urandom(8).hex()


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


def _image_part(block: c.ImageBlock) -> dict[str, Any]:
    if block.url is not UNSET:
        url = block.url
        if url.startswith("data:") and ";base64," in url:
            mime, data = url[5:].split(";base64,", 1)
            return {"inlineData": {"mimeType": mime or "image/png", "data": data}}
        mime = block.media_type if block.media_type is not UNSET else _guess_mime(url)
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    mime = block.media_type if block.media_type is not UNSET else "image/png"
    return {"inlineData": {"mimeType": mime, "data": block.data or ""}}


def _guess_mime(url: str) -> str:
    lowered = url.lower().split("?")[0]
    for ending, mime in ((".png", "image/png"), (".gif", "image/gif"), (".webp", "image/webp")):
        if lowered.endswith(ending):
            return mime
    return "image/jpeg"


def _result_response(block: c.ToolResultBlock) -> dict[str, Any]:
    text = "".join(part.text for part in block.content if isinstance(part, c.TextBlock))
    return {"error": text or "error"} if block.is_error else {"result": text}


def _parts(message: c.Message, names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    pending_signature = ""  # a signed, empty thinking block stands for the next call's signature
    first_call_seen = False
    for block in message.content:
        if isinstance(block, c.TextBlock):
            if block.text:
                parts.append({"text": block.text})
        elif isinstance(block, c.ImageBlock):
            parts.append(_image_part(block))
        elif isinstance(block, c.AudioBlock):
            mime = f"audio/{block.format or 'wav'}"
            parts.append({"inlineData": {"mimeType": mime, "data": block.data}})
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
            call: dict[str, Any] = {"name": block.name, "args": block.input}
            if call_id and not call_id.startswith("call_gemini_"):
                call["id"] = call_id
            part: dict[str, Any] = {"functionCall": call}
            if signature or not first_call_seen:
                # Gemini signs only the first of parallel calls, and checks only that one.
                part["thoughtSignature"] = signature or SKIP_SIGNATURE
            first_call_seen = True
            parts.append(part)
        elif isinstance(block, c.ToolResultBlock):
            call_id, _ = unpack_tool_id(block.tool_use_id)
            name = block.name if block.name is not UNSET else names.get(block.tool_use_id, "")
            response: dict[str, Any] = {"name": name, "response": _result_response(block)}
            if call_id and not call_id.startswith("call_gemini_"):
                response["id"] = call_id
            parts.append({"functionResponse": response})
            parts.extend(
                _image_part(part) for part in block.content if isinstance(part, c.ImageBlock)
            )
    return parts


def _schema(parameters: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema as Gemini's ``parametersJsonSchema`` takes it (``$schema`` is refused)."""
    return {k: v for k, v in parameters.items() if k != "$schema"}


def canonical_to_gemini_request(request: c.Request) -> dict[str, Any]:
    """A canonical request as a Gemini ``generateContent`` body (the model goes in the URL)."""
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for message in request.messages:
        parts = _parts(message, names)
        if not parts:
            continue
        role = "model" if message.role == "assistant" else "user"
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": c.text_of(request.system)}]}
    if request.tools is not UNSET and request.tools:
        declarations = []
        for tool in request.tools:
            declaration: dict[str, Any] = {"name": tool.name}
            if tool.description is not UNSET:
                declaration["description"] = tool.description
            if tool.parameters and tool.parameters.get("properties"):
                declaration["parametersJsonSchema"] = _schema(tool.parameters)
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
        if request.tool_choice is not UNSET:
            choice = request.tool_choice
            mode = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}[choice.mode]
            config: dict[str, Any] = {"mode": mode}
            if choice.mode == "tool" and choice.name is not UNSET:
                config["allowedFunctionNames"] = [choice.name]
            body["toolConfig"] = {"functionCallingConfig": config}
    generation: dict[str, Any] = {}
    if request.max_tokens is not UNSET:
        generation["maxOutputTokens"] = request.max_tokens
    for name, key in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
    ):
        value = getattr(request, name)
        if value is not UNSET:
            generation[key] = value
    if request.stop is not UNSET and request.stop:
        generation["stopSequences"] = request.stop[:5]
    if request.response_format is not UNSET:
        kind = request.response_format.get("type")
        if kind in ("json_object", "json_schema"):
            generation["responseMimeType"] = "application/json"
            schema = (request.response_format.get("json_schema") or {}).get("schema")
            if isinstance(schema, dict):
                generation["responseJsonSchema"] = _schema(schema)
    if request.reasoning is not UNSET:
        budget = request.reasoning.budget_tokens
        if budget is UNSET and request.reasoning.effort is not UNSET:
            budget = EFFORT_BUDGET.get(request.reasoning.effort, 8192)
        if budget is not UNSET:
            generation["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": budget > 0}
    if generation:
        body["generationConfig"] = generation
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
