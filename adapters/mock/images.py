"""The mock provider's images: a small PNG drawn from the prompt, with no network and no key.

Each image is a 64x64 gradient whose colours come from a hash of the prompt and the image's
index, so the same request makes the same images and ``n`` of them differ. Asked for URLs, the
mock answers ``data:`` URLs (a browser shows them as they are; nothing is stored).
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
import zlib
from collections.abc import Mapping
from typing import Any

import msgspec

from adapters.images import Image, ImagesRequest, answer_bytes, data_url

SIDE = 64


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def gradient_png(seed: bytes, side: int = SIDE) -> bytes:
    """A ``side``-pixel square RGB PNG: a diagonal gradient between two colours from ``seed``."""
    digest = hashlib.sha256(seed).digest()
    start, end = digest[:3], digest[3:6]
    rows = []
    for y in range(side):
        row = bytearray(b"\x00")  # filter type: none
        for x in range(side):
            t = (x + y) / (2 * side - 2)
            row.extend(round(a + (b - a) * t) for a, b in zip(start, end, strict=True))
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(b"".join(rows))) + _chunk(b"IEND", b""))


def mock_images(model: str, body: Mapping[str, Any]) -> bytes:
    """``n`` images in OpenAI's answer shape, as URLs or base64 as asked."""
    request = msgspec.convert(body, ImagesRequest)
    images = []
    for index in range(request.n):
        b64 = base64.b64encode(gradient_png(f"{index}:{request.prompt}".encode())).decode()
        images.append(Image(url=data_url(b64, "image/png")) if request.wants_url
                      else Image(b64_json=b64))
    return answer_bytes(int(time.time()), images)
