"""Fake video upstreams over loopback HTTP: OpenAI's ``/v1/videos`` and MiniMax's
``video_generation`` → query → files/retrieve → download, in one aiohttp server.

What a job does is chosen by its model (the upstream name):

==============  =============================================================================
model           behaviour
==============  =============================================================================
(anything)      finishes after ``polls_to_finish`` polls (2), then serves ``size`` bytes
``fail``        fails at its first poll with ``REASON`` (OpenAI: ``error``; MiniMax: ``Fail``)
``refuse``      refused at creation: OpenAI 400; MiniMax ``base_resp`` 1026
``forever``     never finishes
==============  =============================================================================

``polls`` counts the polls of each upstream job id and ``overlaps`` the polls that arrived
while another poll of the same job was still being answered (each poll takes
``poll_delay`` seconds); ``downloads`` counts the files served.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

REASON = "The prompt was flagged by the fake's content policy"


def video_bytes(job_id: str, size: int) -> bytes:
    """The file of ``job_id``: an MP4 ``ftyp`` box, then a pattern up to ``size`` bytes."""
    head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    pattern = (job_id.encode() * (size // max(len(job_id), 1) + 1))
    return (head + pattern)[:size]


@dataclass
class VideoUpstream:
    """An upstream speaking both video dialects (see the module docstring), served by aiohttp
    in a thread of its own; ``url`` is its OpenAI base (``…/v1``), ``origin`` MiniMax's."""

    polls_to_finish: int = 2
    size: int = 300_000
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    polls: Counter[str] = field(default_factory=Counter)
    downloads: Counter[str] = field(default_factory=Counter)
    overlaps: Counter[str] = field(default_factory=Counter)
    poll_delay: float = 0.0
    port: int = 0
    _inflight: Counter[str] = field(default_factory=Counter)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def minimax_url(self) -> str:
        return self.origin

    def start(self) -> VideoUpstream:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True, name="fake-video-upstream").start()
        ready.wait(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/videos", self._openai_create)
        app.router.add_get("/v1/videos/{id}", self._openai_get)
        app.router.add_get("/v1/videos/{id}/content", self._openai_content)
        app.router.add_post("/v1/video_generation", self._minimax_create)
        app.router.add_get("/v1/query/video_generation", self._minimax_query)
        app.router.add_get("/v1/files/retrieve", self._minimax_file)
        app.router.add_get("/download/{id}.mp4", self._download)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        with contextlib.suppress(TimeoutError):
            future.result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _new(self, body: dict[str, Any], prefix: str) -> str:
        job_id = prefix + secrets.token_hex(6)
        self.jobs[job_id] = body
        self.hits[str(body.get("model", ""))] += 1
        return job_id

    async def _state(self, job_id: str) -> str:
        self.polls[job_id] += 1
        self._inflight[job_id] += 1
        if self._inflight[job_id] > 1:
            self.overlaps[job_id] += 1
        try:
            await asyncio.sleep(self.poll_delay)
        finally:
            self._inflight[job_id] -= 1
        model = self.jobs[job_id].get("model")
        if model == "fail":
            return "failed"
        if model == "forever" or self.polls[job_id] < self.polls_to_finish:
            return "in_progress"
        return "completed"

    # --- OpenAI ---

    async def _openai_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("model") == "refuse":
            return web.json_response({"error": {"message": REASON, "type": "invalid_request_error",
                                                "code": "moderation_blocked"}}, status=400)
        job_id = self._new(body, "video_up_")
        return web.json_response(self._video(job_id, "queued"))

    def _video(self, job_id: str, status: str) -> dict[str, Any]:
        body = self.jobs[job_id]
        error = {"code": "moderation_blocked", "message": REASON} if status == "failed" else None
        return {"id": job_id, "object": "video", "model": body.get("model"), "status": status,
                "progress": 100 if status == "completed" else 40, "created_at": 1,
                "seconds": body.get("seconds", "4"), "size": body.get("size", "720x1280"),
                "error": error}

    async def _openai_get(self, request: web.Request) -> web.Response:
        job_id = request.match_info["id"]
        if job_id not in self.jobs:
            return web.json_response({"error": {"message": "no such video"}}, status=404)
        return web.json_response(self._video(job_id, await self._state(job_id)))

    async def _openai_content(self, request: web.Request) -> web.StreamResponse:
        return await self._download(request)

    # --- MiniMax ---

    @staticmethod
    def _base(code: int = 0, message: str = "success") -> dict[str, Any]:
        return {"status_code": code, "status_msg": message}

    async def _minimax_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("model") == "refuse":
            return web.json_response({"task_id": "", "base_resp": self._base(
                1026, "input new_sensitive: " + REASON)})
        return web.json_response({"task_id": self._new(body, "task_"),
                                  "base_resp": self._base()})

    async def _minimax_query(self, request: web.Request) -> web.Response:
        job_id = request.query.get("task_id", "")
        if job_id not in self.jobs:
            return web.json_response({"base_resp": self._base(2013, "invalid task_id")})
        status = {"in_progress": "Processing", "completed": "Success", "failed": "Fail"}[
            await self._state(job_id)]
        answer: dict[str, Any] = {"task_id": job_id, "status": status,
                                  "base_resp": self._base()}
        if status == "Success":
            answer["file_id"] = "file" + job_id
        if status == "Fail":
            answer["base_resp"] = self._base(1027, REASON)
        return web.json_response(answer)

    async def _minimax_file(self, request: web.Request) -> web.Response:
        file_id = request.query.get("file_id", "")
        job_id = file_id.removeprefix("file")
        if job_id not in self.jobs:
            return web.json_response({"base_resp": self._base(1004, "file not found")})
        return web.json_response({"file": {
            "file_id": file_id, "bytes": self.size, "filename": "output.mp4",
            "download_url": f"{self.origin}/download/{job_id}.mp4"}, "base_resp": self._base()})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["id"]
        if job_id not in self.jobs:
            return web.json_response({"error": {"message": "no such file"}}, status=404)
        self.downloads[job_id] += 1
        data = video_bytes(job_id, self.size)
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = len(data)
        await response.prepare(request)
        for start in range(0, len(data), 65536):
            await response.write(data[start:start + 65536])
        await response.write_eof()
        return response
