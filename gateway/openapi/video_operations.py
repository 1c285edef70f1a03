"""The ``Operation`` and bodies of the video routes (``gateway.video.routes``)."""

from __future__ import annotations

import msgspec

from gateway.openapi.operation import CHAT_ERRORS, CHAT_HEADERS, Operation, Param


class VideoCreateRequest(msgspec.Struct):
    """A video to make. Also taken as multipart/form-data (the openai SDK's shape), where
    ``input_reference`` may be an uploaded image."""

    model: str
    prompt: str
    seconds: int | str | None = None  # 1 to [video] max_seconds; default [video] default_seconds
    size: str | None = None  # WIDTHxHEIGHT
    input_reference: str | dict[str, str] | None = None  # an image URL or data: URL


class VideoError(msgspec.Struct):
    code: str
    message: str


class Video(msgspec.Struct):
    """A video job (OpenAI's ``Video`` object)."""

    id: str
    object: str
    model: str
    status: str  # queued, in_progress, completed, failed
    progress: int
    created_at: int
    seconds: str
    size: str
    completed_at: int | None = None
    expires_at: int | None = None
    prompt: str | None = None
    error: VideoError | None = None
    remixed_from_video_id: str | None = None


_DESCRIPTION = ("A job: answered `queued` at once, then polled by the gateway until it ends; "
                "billed per second or per video when it completes, not at all if it fails "
                "(docs/video.md).")


def _video(prefix: str) -> tuple[Operation, ...]:
    one = prefix + "/{video_id}"
    return (
        Operation("POST", prefix, "Create a video generation job", "video", {200: Video},
                  body=VideoCreateRequest, errors=CHAT_ERRORS, headers=CHAT_HEADERS,
                  example={"model": "mock/video", "prompt": "a cat walking in the park"},
                  description=_DESCRIPTION),
        Operation("GET", one, "A video job: status, progress, error", "video", {200: Video},
                  errors=(401, 404, 503)),
        Operation("GET", one + "/content", "The finished video file, streamed", "video",
                  {200: None}, media_type="video/mp4", errors=(400, 401, 404, 502, 503, 504),
                  query=(Param("variant", {"type": "string", "enum": ["video"]},
                               "Only `video` is served"),)),
    )


VIDEO = (*_video("/v1/video/generations"), *_video("/v1/videos"))
