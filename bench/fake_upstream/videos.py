"""Video generation, in the two dialects the gateway polls: OpenAI's ``POST /v1/videos``,
``GET /v1/videos/{id}`` and ``GET /v1/videos/{id}/content``; MiniMax's
``POST /v1/video_generation``, ``GET /v1/query/video_generation?task_id=``,
``GET /v1/files/retrieve?file_id=`` and the file it names, ``GET /download/{id}.mp4``.

A job does what its model's words say (``scenario``): it finishes at its ``polls<N>``-th poll
(2 unless named), then its file is ``SIZE`` bytes (an MP4 ``ftyp`` box, then a pattern);
``fail`` fails it at its first poll with ``REASON`` (OpenAI: the video's ``error``; MiniMax:
``Fail`` with ``base_resp`` 1027); ``forever`` never finishes it; ``error<N>`` refuses it at
creation (OpenAI: HTTP N; MiniMax: HTTP 200 with ``base_resp`` N); ``ttft<ms>`` answers each
poll that late.

Jobs are kept per server (by the request's ``Host``): ``jobs_of(origin)`` has each job's create
body and counts its polls, its ``overlaps`` (polls arriving while another poll of the job was
still being answered) and its downloads.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from bench.fake_upstream.scenario import Scenario
from bench.fake_upstream.wire import Probe, Reply, Request, body_reply, json_reply, origin

REASON = "The prompt was flagged by the fake's content policy"
SIZE = 300_000
OPENAI = "/v1/videos/"
DOWNLOAD = "/download/"
_MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


@dataclass
class Job:
    """One video job as the fake sees it."""

    body: dict[str, Any]
    polls: int = 0
    overlaps: int = 0
    downloads: int = 0
    busy_until: float = 0.0


_jobs: dict[str, dict[str, Job]] = {}  # by the server's host (``127.0.0.1:port``)


def jobs_of(origin: str) -> dict[str, Job]:
    """The jobs of the server at ``origin`` (``http://host:port``), by upstream job id."""
    return _jobs.setdefault(origin.removeprefix("http://"), {})


def _store(request: Request) -> dict[str, Job]:
    return jobs_of(origin(request))


def video_bytes(job_id: str, size: int = SIZE) -> bytes:
    """The file of ``job_id``: an MP4 ``ftyp`` box, then a pattern up to ``size`` bytes."""
    return (_MP4 + job_id.encode() * (size // max(len(job_id), 1) + 1))[:size]


def _create(request: Request, prefix: str) -> str:
    job_id = prefix + secrets.token_hex(6)
    _store(request)[job_id] = Job(request.json())
    return job_id


def _poll(job: Job, s: Scenario) -> str:
    """Count a poll of ``job``; its state now."""
    job.polls += 1
    now = time.monotonic()
    if job.busy_until > now:
        job.overlaps += 1
    job.busy_until = max(job.busy_until, now + s.ttft_ms / 1000)
    if s.has("fail"):
        return "failed"
    if s.has("forever") or job.polls < (s.polls or 2):
        return "in_progress"
    return "completed"


def _job_probe(job_id: str, request: Request) -> Probe:
    job = _store(request).get(job_id)
    return Probe(model=str(job.body.get("model", ""))) if job is not None else Probe()


def _file(job_id: str, request: Request) -> Reply:
    job = _store(request).get(job_id)
    if job is None:
        return json_reply(404, {"error": {"message": "no such file"}})
    job.downloads += 1
    return body_reply(200, b"video/mp4", video_bytes(job_id))


# --- OpenAI ---


def openai_create(request: Request, s: Scenario) -> Reply:
    """``POST /v1/videos``."""
    if s.error:
        return json_reply(s.error, {"error": {"message": REASON, "type": "invalid_request_error",
                                              "code": "moderation_blocked"}})
    job_id = _create(request, "video_up_")
    return json_reply(200, _video(job_id, _store(request)[job_id], "queued"))


def _video(job_id: str, job: Job, status: str) -> dict[str, Any]:
    error = {"code": "moderation_blocked", "message": REASON} if status == "failed" else None
    return {"id": job_id, "object": "video", "model": job.body.get("model"), "status": status,
            "progress": 100 if status == "completed" else 40, "created_at": 1,
            "seconds": job.body.get("seconds", "4"), "size": job.body.get("size", "720x1280"),
            "error": error}


def openai_probe(request: Request) -> Probe:
    """A poll is the job's model's (its ``ttft`` delays it); the content names none."""
    rest = request.path[len(OPENAI):]
    return Probe() if rest.endswith("/content") else _job_probe(rest, request)


def openai_job(request: Request, s: Scenario) -> Reply:
    """``GET /v1/videos/{id}`` and ``GET /v1/videos/{id}/content``."""
    job_id, _, content = request.path[len(OPENAI):].partition("/")
    if content:
        return _file(job_id, request)
    job = _store(request).get(job_id)
    if job is None:
        return json_reply(404, {"error": {"message": "no such video"}})
    return json_reply(200, _video(job_id, job, _poll(job, s)))


# --- MiniMax ---


def _base(code: int = 0, message: str = "success") -> dict[str, Any]:
    return {"status_code": code, "status_msg": message}


def _query_value(request: Request, name: str) -> str:
    for pair in request.target.partition("?")[2].split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return value
    return ""


def minimax_create(request: Request, s: Scenario) -> Reply:
    """``POST /v1/video_generation``."""
    if s.error:
        return json_reply(200, {"task_id": "", "base_resp": _base(
            s.error, "input new_sensitive: " + REASON)})
    return json_reply(200, {"task_id": _create(request, "task_"), "base_resp": _base()})


def minimax_probe(request: Request) -> Probe:
    """A query is its task's model's."""
    return _job_probe(_query_value(request, "task_id"), request)


def minimax_query(request: Request, s: Scenario) -> Reply:
    """``GET /v1/query/video_generation?task_id=``."""
    job_id = _query_value(request, "task_id")
    job = _store(request).get(job_id)
    if job is None:
        return json_reply(200, {"base_resp": _base(2013, "invalid task_id")})
    status = {"in_progress": "Processing", "completed": "Success", "failed": "Fail"}[
        _poll(job, s)]
    answer: dict[str, Any] = {"task_id": job_id, "status": status, "base_resp": _base()}
    if status == "Success":
        answer["file_id"] = "file" + job_id
    if status == "Fail":
        answer["base_resp"] = _base(1027, REASON)
    return json_reply(200, answer)


def minimax_file(request: Request, s: Scenario) -> Reply:
    """``GET /v1/files/retrieve?file_id=``: the file's ``download_url`` on this fake."""
    file_id = _query_value(request, "file_id")
    job_id = file_id.removeprefix("file")
    if job_id not in _store(request):
        return json_reply(200, {"base_resp": _base(1004, "file not found")})
    return json_reply(200, {"file": {
        "file_id": file_id, "bytes": SIZE, "filename": "output.mp4",
        "download_url": f"{origin(request)}{DOWNLOAD}{job_id}.mp4"}, "base_resp": _base()})


def download(request: Request, s: Scenario) -> Reply:
    """``GET /download/{id}.mp4``."""
    return _file(request.path[len(DOWNLOAD):].removesuffix(".mp4"), request)
