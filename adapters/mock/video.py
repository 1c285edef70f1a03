"""The ``mock`` provider's video jobs: no network, no key, a tiny file.

A job is finished as soon as it is created (the first poll says ``completed``), and its file
is a few hundred bytes with an MP4 ``ftyp`` header, the same for the same job. The job id
carries everything the mock needs, so jobs survive a restart like real ones. A prompt
containing ``[fail]`` makes the job fail, with a reason, to try failure handling.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator

from adapters.base import ProviderSettings
from adapters.upstream import UpstreamClient
from adapters.video import VideoRequest, VideoState

_FAIL = "[fail]"


class MockDownload:
    """A mock video's body, in one chunk."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.headers = {"Content-Type": "video/mp4", "Content-Length": str(len(body))}

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.body

    def close(self) -> None:
        """Nothing to release."""


def mock_video_file(job_id: str) -> bytes:
    """The mock's deterministic file for ``job_id``: an ``ftyp`` box, then filler."""
    filler = hashlib.sha256(job_id.encode()).digest() * 8
    return b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + filler


class MockVideo:
    """Video jobs of the built-in mock provider (see the module docstring)."""

    def __init__(self, settings: ProviderSettings, client: UpstreamClient) -> None:
        self.settings = settings

    async def create(self, model: str, request: VideoRequest, api_key: str | None) -> str:
        kind = "fail" if _FAIL in request.prompt else "ok"
        return f"mockvideo_{kind}_{secrets.token_hex(8)}"

    async def poll(self, job_id: str, api_key: str | None) -> VideoState:
        if job_id.startswith("mockvideo_fail_"):
            return VideoState(status="failed", error_code="mock_failure",
                              error="the mock provider was asked to fail ([fail] in the prompt)")
        return VideoState(status="completed", progress=100)

    async def download(self, job_id: str, file_ref: str, api_key: str | None) -> MockDownload:
        return MockDownload(mock_video_file(job_id))
