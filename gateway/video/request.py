"""A video create request, in either shape the callers send: JSON (``/v1/video/generations``,
curl) or ``multipart/form-data`` (the openai SDK's ``videos.create``, whose
``input_reference`` may be an uploaded image). Either becomes the model name and an
``adapters.video.VideoRequest``; anything wrong is a 400 naming the field."""

from __future__ import annotations

import base64
import re
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import msgspec

from adapters.video import VideoRequest
from gateway.config import VideoConfig
from gateway.errors import BadRequest

_SIZE = re.compile(r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$")
_REFERENCE = ("http://", "https://", "data:image/")


def parse_video_request(
    body: bytes, content_type: str, config: VideoConfig
) -> tuple[str, VideoRequest]:
    """The model asked for and the request, or ``BadRequest``."""
    fields = _multipart(body, content_type) if content_type.startswith(
        "multipart/form-data") else _json(body)
    model = fields.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' is required: GET /v1/models lists the video models",
                         param="model")
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("'prompt' is required: a text describing the video", param="prompt")
    if len(prompt) > config.max_prompt_chars:
        raise BadRequest(f"'prompt' is over {config.max_prompt_chars} characters",
                         param="prompt")
    size = fields.get("size", "")
    if not isinstance(size, str) or (size and not _SIZE.match(size)):
        raise BadRequest("'size' must be WIDTHxHEIGHT, e.g. 1280x720", param="size")
    return model, VideoRequest(prompt=prompt, seconds=_seconds(fields.get("seconds"), config),
                               size=size, input_reference=_reference(fields))


def _json(body: bytes) -> dict[str, Any]:
    try:
        fields = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from exc
    if not isinstance(fields, dict):
        raise BadRequest("The body must be a JSON object")
    return fields


def _multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """The form's fields; a file part becomes a data: URL."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise BadRequest("The multipart body could not be read")
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None:
            kind = part.get_content_type()
            fields[name] = f"data:{kind};base64,{base64.b64encode(data).decode()}"
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields


def _seconds(value: Any, config: VideoConfig) -> int:
    if value is None:
        return config.default_seconds
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not (
            1 <= value <= config.max_seconds):
        raise BadRequest(f"'seconds' must be a whole number from 1 to {config.max_seconds}",
                         param="seconds")
    return value


def _reference(fields: dict[str, Any]) -> str:
    """``input_reference`` as an image URL or data: URL ("" when absent)."""
    value = fields.get("input_reference", fields.get("input_reference[image_url]"))
    if isinstance(value, dict):
        if "file_id" in value and "image_url" not in value:
            raise BadRequest("'input_reference.file_id' is not supported: send image_url or "
                             "upload the image", param="input_reference")
        value = value.get("image_url")
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not value.startswith(_REFERENCE):
        raise BadRequest("'input_reference' must be an image: an http(s) URL, a data:image/ "
                         "URL, or an uploaded file", param="input_reference")
    return value
