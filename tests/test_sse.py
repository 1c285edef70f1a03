"""SSE framing is ours: any chunking, CRLF, comments, no line-length limit."""

from __future__ import annotations

import pytest

from adapters.sse import SSEFramer, encode_event, event_data, event_fields

pytestmark = pytest.mark.unit


def frame_all(chunks: list[bytes]) -> list[bytes]:
    framer = SSEFramer()
    events = [event for chunk in chunks for event in framer.feed(chunk)]
    return events + framer.flush()


def test_events_split_at_blank_lines_whatever_the_chunking() -> None:
    stream = b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    expected = [b'data: {"a":1}', b'data: {"b":2}', b"data: [DONE]"]
    assert frame_all([stream]) == expected
    assert frame_all([bytes([byte]) for byte in stream]) == expected
    assert frame_all([stream[:7], stream[7:19], stream[19:]]) == expected
    # One whole event a chunk, the usual case (and a stray blank line between two).
    one_each = [b'data: {"a":1}\n\n', b"\n\n", b'data: {"b":2}\n\n', b"data: [DONE]\n\n"]
    assert frame_all(one_each) == expected


def test_crlf_separators_even_when_split_between_chunks() -> None:
    stream = b"event: ping\r\ndata: {}\r\n\r\ndata: x\r\n\r\n"
    for cut in range(1, len(stream)):
        assert frame_all([stream[:cut], stream[cut:]]) == [b"event: ping\ndata: {}", b"data: x"]


def test_a_200_kb_delta_is_one_event() -> None:
    payload = b'data: {"content":"' + b"x" * 200_000 + b'"}\n\n'
    chunks = [payload[i : i + 1024] for i in range(0, len(payload), 1024)]
    events = frame_all(chunks)
    assert len(events) == 1
    assert len(event_data(events[0]) or b"") == len(payload) - len(b"data: \n\n")


def test_trailing_event_without_blank_line_is_flushed() -> None:
    assert frame_all([b"data: a\n\ndata: b"]) == [b"data: a", b"data: b"]


def test_event_fields() -> None:
    assert event_fields(b"event: message_start\ndata: {}") == ("message_start", b"{}")
    assert event_data(b": keep-alive") is None
    assert event_data(b"data:no-space") == b"no-space"
    assert event_data(b"data: one\ndata: two") == b"one\ntwo"
    assert encode_event(b"{}", "ping") == b"event: ping\ndata: {}\n\n"
