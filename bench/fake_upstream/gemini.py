"""Gemini ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``.

The model is named by the path, not the body; stream frames end in ``\\r\\n\\r\\n`` as Google's
do. Function calls carry ``SIGNATURE``, which has the ``+``, ``/`` and ``=`` of real base64
signatures."""

from __future__ import annotations

import json
from typing import Any

from bench.fake_upstream.scenario import Scenario
from bench.fake_upstream.wire import (
    Event,
    Probe,
    Reply,
    Request,
    answer_text,
    json_reply,
    sse_data,
    stream_reply,
    stream_words,
)

SIGNATURE = "CiQB+/z9Q2lnbmF0dXJlLW9mLWdlbWluaQ=="
PREFIX = "/v1beta/models/"


def probe(request: Request) -> Probe:
    """Model and streaming from the path (``…/{model}:{action}``); streams must ask for SSE."""
    model, _, action = request.path[len(PREFIX):].partition(":")
    stream = action == "streamGenerateContent"
    if stream and "alt=sse" not in request.target:
        raise ValueError("streams must ask for alt=sse")
    return Probe(model=model, stream=stream)


def error(status: int) -> Reply:
    """The Google error body."""
    return json_reply(status, {"error": {"code": status, "message": f"fake gemini error {status}",
                                         "status": "ERR"}})


def _parts(s: Scenario, body: dict[str, Any]) -> list[dict[str, Any]]:
    contents = body.get("contents", [])
    last = contents[-1]["parts"] if contents else []
    responses = [p["functionResponse"] for p in last if "functionResponse" in p]
    if s.has("tools") and not responses:
        return [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                 "thoughtSignature": SIGNATURE},
                {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}}]
    if responses:
        texts = [f"{r['name']}={json.dumps(r['response'], sort_keys=True)}" for r in responses]
        text = "results: " + " | ".join(texts)
    else:
        text = answer_text(s, " ".join(p.get("text", "") for p in last if "text" in p))
    parts: list[dict[str, Any]] = []
    if s.has("thinking"):
        parts.append({"text": "pondering", "thought": True})
    parts.append({"text": text})
    return parts


def answer(request: Request, s: Scenario) -> Reply:
    """The reply ``s`` asks for, in Gemini's dialect."""
    if s.error:
        return error(s.error)
    model = request.probe.model
    parts = _parts(s, {} if s.cacheable else request.json())
    words = sum(len(p.get("text", "").split()) for p in parts if not p.get("thought"))
    usage = {"promptTokenCount": 30, "candidatesTokenCount": words,
             "totalTokenCount": 30 + words, "cachedContentTokenCount": 12}
    if s.has("thinking"):
        usage["thoughtsTokenCount"] = 7
    head = {"modelVersion": model + "-001", "responseId": "gem-fake"}
    if not request.probe.stream:
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}
        return json_reply(200, {"candidates": [candidate], "usageMetadata": usage, **head})
    pieces: list[dict[str, Any]] = []
    for part in parts:
        if "text" in part and not part.get("thought"):
            pieces += [{"text": word} for word in stream_words(part["text"], s, leading=True)]
        else:
            pieces.append(part)
    events: list[Event] = []
    for number, piece in enumerate(pieces):
        chunk: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": [piece]}}],
                                 **head, "usageMetadata": {"promptTokenCount": 30}}
        if number == len(pieces) - 1:
            if s.has("truncated"):
                break  # ends cleanly, but without the chunk holding the finish reason
            chunk["candidates"][0]["finishReason"] = "STOP"
            chunk["usageMetadata"] = usage
        events.append((sse_data(chunk, b"\r\n\r\n"), True))
    return stream_reply(events, s)
