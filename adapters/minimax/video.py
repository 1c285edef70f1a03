"""MiniMax video generation: ``POST /v1/video_generation`` answers a ``task_id``;
``GET /v1/query/video_generation?task_id=`` its status (Preparing, Queueing, Processing,
Success, Fail) and, on success, a ``file_id``; ``GET /v1/files/retrieve?file_id=`` the file's
``download_url``, which only this adapter sees. A failed ``base_resp`` is an error as
``adapters.minimax.common`` maps it; at a poll, the job's failure with MiniMax's reason."""

from __future__ import annotations

import msgspec

from adapters.errors import ProviderHTTPError, ProviderProtocolError
from adapters.minimax.common import BaseResp, MiniMaxAPI, decode_checked
from adapters.upstream import UpstreamResponse
from adapters.video import Status, VideoRequest, VideoState


class _Created(msgspec.Struct):
    task_id: str = ""
    base_resp: BaseResp | None = None


class _Query(msgspec.Struct):
    status: str = ""
    file_id: str | int | None = None
    base_resp: BaseResp | None = None


class _File(msgspec.Struct):
    download_url: str = ""


class _Retrieved(msgspec.Struct):
    file: _File | None = None
    base_resp: BaseResp | None = None


_ENCODE = msgspec.json.Encoder()
_CREATED = msgspec.json.Decoder(_Created)
_QUERY = msgspec.json.Decoder(_Query)
_RETRIEVED = msgspec.json.Decoder(_Retrieved)
_STATUSES: dict[str, Status] = {
    "Preparing": "queued", "Queueing": "queued", "Processing": "in_progress",
    "Success": "completed", "Fail": "failed",
}


def minimax_video_body(model: str, request: VideoRequest) -> dict[str, object]:
    """The create body of ``request`` for ``model``."""
    body: dict[str, object] = {"model": model, "prompt": request.prompt,
                               "duration": request.seconds}
    if request.size:
        body["resolution"] = _resolution(request.size)
    if request.input_reference:
        body["first_frame_image"] = request.input_reference
    return body


def _resolution(size: str) -> str:
    """``1280x720`` as MiniMax's ``720P``: the shorter side."""
    width, _, height = size.partition("x")
    return f"{min(int(width), int(height))}P" if width.isdigit() and height.isdigit() else size


def minimax_to_video_state(body: bytes) -> VideoState:
    """A query answer as the gateway's ``VideoState``; a failed task keeps MiniMax's reason."""
    try:
        answer = decode_checked(body, _QUERY)
    except ProviderHTTPError as refused:
        if refused.retryable:
            raise
        return VideoState(status="failed", error_code="upstream_error", error=refused.message)
    status = _STATUSES.get(answer.status)
    if status is None:
        raise ProviderProtocolError(f"unknown MiniMax task status {answer.status!r}")
    if status == "failed":
        return VideoState(status="failed", error_code="upstream_error",
                          error="MiniMax reported the task failed")
    return VideoState(status=status, progress=100 if status == "completed" else 0,
                      file_ref=str(answer.file_id or ""))


class MinimaxVideo(MiniMaxAPI):
    """Video jobs on MiniMax."""

    async def create(self, model: str, request: VideoRequest, api_key: str | None) -> str:
        body = _ENCODE.encode(minimax_video_body(model, request))
        answer = await self.client.fetch(self.url("/v1/video_generation"), body,
                                         self.key_headers(api_key))
        created = decode_checked(answer, _CREATED)
        if not created.task_id:
            raise ProviderProtocolError("MiniMax answered no task_id")
        return created.task_id

    async def poll(self, job_id: str, api_key: str | None) -> VideoState:
        answer = await self.client.get_json(
            self.url(f"/v1/query/video_generation?task_id={job_id}"), self.key_headers(api_key))
        return minimax_to_video_state(answer)

    async def download(self, job_id: str, file_ref: str, api_key: str | None) -> UpstreamResponse:
        answer = await self.client.get_json(
            self.url(f"/v1/files/retrieve?file_id={file_ref}"), self.key_headers(api_key))
        retrieved = decode_checked(answer, _RETRIEVED)
        if retrieved.file is None or not retrieved.file.download_url:
            raise ProviderProtocolError("MiniMax answered no download_url")
        # The file's host takes no key: the URL is signed.
        return await self.client.get(retrieved.file.download_url, {})
