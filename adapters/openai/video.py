"""OpenAI's video API (``/videos``, Sora), as OpenAI-compatible providers serve it: create with
``POST {base_url}/videos``, poll ``GET /videos/{id}``, download ``GET /videos/{id}/content``."""

from __future__ import annotations

import msgspec

from adapters.errors import ProviderProtocolError
from adapters.upstream import JSONProvider, UpstreamResponse
from adapters.video import Status, VideoRequest, VideoState


class _Error(msgspec.Struct):
    code: str | None = None
    message: str | None = None


class _Video(msgspec.Struct):
    id: str
    status: str = "queued"
    progress: int | None = None
    error: _Error | None = None


_VIDEO = msgspec.json.Decoder(_Video)
_ENCODE = msgspec.json.Encoder()
_STATUSES: dict[str, Status] = {
    "queued": "queued", "in_progress": "in_progress", "completed": "completed",
    "failed": "failed",
}


def openai_video_body(model: str, request: VideoRequest) -> dict[str, object]:
    """The JSON create body of ``request`` for ``model``."""
    body: dict[str, object] = {"model": model, "prompt": request.prompt,
                               "seconds": str(request.seconds)}
    if request.size:
        body["size"] = request.size
    if request.input_reference:
        body["input_reference"] = {"image_url": request.input_reference}
    return body


def openai_to_video_state(body: bytes) -> VideoState:
    """A ``Video`` object as the gateway's ``VideoState``."""
    video = _decode(body)
    status = _STATUSES.get(video.status)
    if status is None:
        raise ProviderProtocolError(f"unknown video status {video.status!r}")
    error = video.error
    return VideoState(
        status=status,
        progress=video.progress if video.progress is not None else 0,
        error_code=(error.code or "") if error else "",
        error=(error.message or "") if error else "",
    )


def _decode(body: bytes) -> _Video:
    try:
        return _VIDEO.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProviderProtocolError(f"malformed video object: {exc}") from exc


class OpenAIVideo(JSONProvider):
    """Video jobs on an OpenAI-compatible provider."""

    def _url(self, path: str) -> str:
        return self.settings.base_url.rstrip("/") + path

    async def create(self, model: str, request: VideoRequest, api_key: str | None) -> str:
        body = _ENCODE.encode(openai_video_body(model, request))
        return _decode(await self.client.fetch(self._url("/videos"), body,
                                               self.key_headers(api_key))).id

    async def poll(self, job_id: str, api_key: str | None) -> VideoState:
        return openai_to_video_state(
            await self.client.get_json(self._url(f"/videos/{job_id}"), self.key_headers(api_key)))

    async def download(self, job_id: str, file_ref: str, api_key: str | None) -> UpstreamResponse:
        return await self.client.get(self._url(f"/videos/{job_id}/content"),
                                     self.key_headers(api_key))
