"""What every dialect of the fake builds on: the request it reads, the reply it returns, SSE
framing and the grouping of a stream's events into paced writes."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import msgspec

from bench.fake_upstream.scenario import Scenario

encode = msgspec.json.encode
_decode = msgspec.json.decode
DONE = b"data: [DONE]\n\n"
NOT_JSON = b"data: {not json\n\n"


class _Options(msgspec.Struct, frozen=True):
    include_usage: bool = False


class Probe(msgspec.Struct, frozen=True):
    """The few request fields a reply depends on besides the body's text."""

    model: str = ""
    stream: bool = False
    stream_options: _Options | None = None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


_probe = msgspec.json.Decoder(Probe)


class Request:
    """One request: its target (path and query), lower-cased headers, body and probe."""

    __slots__ = ("_json", "body", "headers", "path", "probe", "target")

    def __init__(self, target: str, headers: dict[bytes, bytes], body: bytes) -> None:
        self.target = target
        self.path = target.partition("?")[0]
        self.headers = headers
        self.body = body
        self.probe = Probe()
        self._json: Any = None

    def probe_body(self) -> Probe:
        """The probe read from the JSON body (raises msgspec errors on a bad body)."""
        self.probe = _probe.decode(self.body)
        return self.probe

    def json(self) -> dict[str, Any]:
        """The body as a dict, decoded once."""
        if self._json is None:
            self._json = _decode(self.body) if self.body else {}
        return self._json  # type: ignore[no-any-return]


def origin(request: Request) -> str:
    """This fake's origin as the client reached it (for URLs the answer names)."""
    return "http://" + request.headers.get(b"host", b"127.0.0.1").decode("latin-1")


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: ``head`` is a whole HTTP response, or a stream's status line and headers
    followed by ``writes`` (HTTP chunks, paced by the scenario). ``cut`` closes the connection
    after the writes instead of ending the body."""

    head: bytes
    writes: tuple[bytes, ...] | None = None
    cut: bool = False


def http_head(status: int, content_type: bytes, extra: dict[str, str] | None = None) -> bytes:
    """A status line and headers, without the blank line's end."""
    reason = HTTPStatus(status).phrase.encode() if status in HTTPStatus._value2member_map_ else b"X"
    lines = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\n" % (status, reason, content_type)
    for name, value in (extra or {}).items():
        lines += f"{name}: {value}\r\n".encode()
    return lines


def body_reply(status: int, content_type: bytes, body: bytes,
               headers: dict[str, str] | None = None) -> Reply:
    """A whole answer of any content type."""
    head = http_head(status, content_type, headers)
    return Reply(head + b"content-length: %d\r\n\r\n" % len(body) + body)


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    """A whole JSON answer."""
    return body_reply(status, b"application/json", encode(payload), headers)


SSE_HEAD = http_head(200, b"text/event-stream", {"cache-control": "no-cache"}) + (
    b"transfer-encoding: chunked\r\n\r\n"
)
LAST_CHUNK = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse_data(payload: Any, end: bytes = b"\n\n") -> bytes:
    """One ``data:`` SSE frame holding ``payload`` as JSON."""
    return b"data: " + encode(payload) + end


def sse_event(name: str, payload: Any) -> bytes:
    """One named SSE event (Anthropic's and the Responses API's framing)."""
    return b"event: " + name.encode() + b"\ndata: " + encode(payload) + b"\n\n"


Event = tuple[bytes, bool]  # an SSE frame, and whether it carries content (is paced)


def stream_reply(events: list[Event], s: Scenario) -> Reply:
    """A streamed reply from its events. Write 0 holds everything up to the first content
    event; each further content event starts a write; the events after the last content are the
    final write. ``malformed`` spoils content event 1; ``cut`` keeps half the content events."""
    contents = [i for i, (_, is_content) in enumerate(events) if is_content]
    if s.has("malformed") and len(contents) > 1:
        events = list(events)
        events[contents[1]] = (NOT_JSON, True)
    tail_from = contents[-1] + 1 if contents else 0
    if s.has("cut"):
        keep = max(len(contents) // 2, 1)
        events = events[: contents[keep] if keep < len(contents) else tail_from]
        tail_from = len(events)
    writes: list[bytes] = []
    current = b""
    seen = False
    for event, is_content in events[:tail_from]:
        if is_content and seen:
            writes.append(chunk(current))
            current = b""
        current += event
        seen = seen or is_content
    if current:
        writes.append(chunk(current))
    if s.has("cut"):
        return Reply(SSE_HEAD, tuple(writes), cut=True)
    tail = b"".join(event for event, _ in events[tail_from:])
    writes.append((chunk(tail) if tail else b"") + LAST_CHUNK)
    return Reply(SSE_HEAD, tuple(writes))


def stream_words(text: str, s: Scenario, *, leading: bool = False) -> list[str]:
    """``text`` as streamed: ``tok `` per token, ``big`` whole, else a word per chunk with its
    space trailing (OpenAI) or ``leading`` (Anthropic, Gemini)."""
    if s.tokens:
        return ["tok "] * s.tokens
    if s.has("big"):
        return [text]
    words = text.split(" ")
    if leading:
        return [w if i == 0 else " " + w for i, w in enumerate(words)]
    return [w + " " for w in words[:-1]] + words[-1:]


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user turn (OpenAI and Anthropic message shapes)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def answer_text(s: Scenario, echo: str) -> str:
    """The answer's text: ``tok<N>`` tokens, 200 KB for ``big``, else ``fake: <echo>``."""
    if s.tokens:
        return "tok " * s.tokens
    if s.has("big"):
        return "x" * 200_000
    return f"fake: {echo}"
