"""Video generation jobs, as every provider dialect serves them: create, poll, download.

A job is created upstream once (``VideoAdapter.create`` answers the provider's job id), then
polled (``poll`` answers a ``VideoState``) until it ends; a finished job's file is fetched
with ``download``, whose body the gateway relays in chunks (the provider's file URL never
leaves the adapter). Each dialect has one class (``adapters/openai/video.py``,
``adapters/minimax/video.py``, ``adapters/mock/video.py``), listed in
``adapters.registry.VIDEO``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Literal, Protocol

import msgspec

Status = Literal["queued", "in_progress", "completed", "failed"]


class VideoRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a caller asked for, in the gateway's terms."""

    prompt: str
    seconds: int
    size: str = ""  # "WIDTHxHEIGHT", or "" for the provider's default
    input_reference: str = ""  # an image URL or data: URL guiding the first frame


class VideoState(msgspec.Struct, frozen=True, kw_only=True):
    """Where an upstream job stands. ``file_ref`` is what ``download`` needs besides the
    job id (MiniMax's file id); ``error`` the provider's reason when it failed."""

    status: Status
    progress: int = 0
    error_code: str = ""
    error: str = ""
    file_ref: str = ""


class Download(Protocol):
    """A finished video's body, read in chunks; ``close`` releases the connection."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class VideoAdapter(Protocol):
    """One provider's video API. ``api_key`` is the caller's own key (BYOK), or None."""

    async def create(self, model: str, request: VideoRequest, api_key: str | None) -> str: ...

    async def poll(self, job_id: str, api_key: str | None) -> VideoState: ...

    async def download(self, job_id: str, file_ref: str, api_key: str | None) -> Download: ...

