"""Server-sent events: framing a byte stream into events, and reading an event's fields.

Framing is ours, from whatever chunk sizes the transport hands us (``iter_any()``), so there
is no line-length limit: a 200 KB delta is one event like any other.
"""

from __future__ import annotations


class SSEFramer:
    """Splits a byte stream into complete events (the bytes before each blank line)."""

    __slots__ = ("_buffer", "_scanned")

    def __init__(self) -> None:
        self._buffer = b""
        self._scanned = 0  # bytes of the buffer already known to hold no separator

    def feed(self, chunk: bytes) -> list[bytes]:
        if not self._buffer and chunk.endswith(b"\n\n") and b"\r" not in chunk:
            # The usual chunk: one whole event, nothing pending (what the loop below finds).
            end = chunk.find(b"\n\n")
            if end == len(chunk) - 2:
                return [chunk[:end]] if end else []
        pending_cr = self._buffer.endswith(b"\r")
        buffer = self._buffer + chunk if self._buffer else chunk
        if pending_cr or b"\r" in chunk:
            buffer = buffer.replace(b"\r\n", b"\n")
        events: list[bytes] = []
        start = 0
        # A CRLF joined across the chunk boundary shrinks the buffer by one: look back two.
        search_from = max(self._scanned - 2, 0)
        while True:
            end = buffer.find(b"\n\n", search_from)
            if end < 0:
                break
            if end > start:
                events.append(buffer[start:end])
            start = search_from = end + 2
        self._buffer = buffer[start:]
        self._scanned = len(self._buffer)
        return events

    def flush(self) -> list[bytes]:
        """What is left when the stream ends without a final blank line."""
        rest, self._buffer, self._scanned = self._buffer.strip(), b"", 0
        return [rest] if rest else []


def event_data(event: bytes) -> bytes | None:
    """The ``data`` payload of one event (several data lines joined by newlines), or None."""
    if event.startswith(b"data: ") and b"\n" not in event:
        return event[6:]
    data: list[bytes] = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line.startswith(b"data: ") else line[5:])
    return b"\n".join(data) if data else None


def event_fields(event: bytes) -> tuple[str | None, bytes | None]:
    """The ``event`` name and ``data`` payload of one event."""
    name: str | None = None
    data: list[bytes] = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line.startswith(b"data: ") else line[5:])
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode()
    return name, (b"\n".join(data) if data else None)


def encode_event(data: bytes, name: str | None = None) -> bytes:
    """One SSE event ready to send."""
    if name is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


def data_payloads(sent: list[bytes]) -> list[bytes]:
    """The ``data:`` payloads of SSE bytes as sent (``[DONE]`` and blanks left out), or the one
    whole body when there are none (a non-streamed answer)."""
    whole = b"".join(sent)
    lines = [line[5:] for line in whole.split(b"\n") if line.startswith(b"data:")]
    payloads = [payload.strip() for payload in (lines or [whole])]
    return [payload for payload in payloads if payload and payload != b"[DONE]"]
