"""The poller: each instance's background loop over the shared video jobs.

Every ``tick`` it leases the jobs due a poll (``VideoJobs.claim``: one instance at a time per
job) and polls each upstream. An unfinished job is polled again after a backoff that doubles
from ``first_poll`` up to ``max_poll_interval``; a job still unfinished ``max_lifetime`` after
its creation fails with that reason, and so does one whose provider refuses to say (a 4xx).
A job that ends is billed once (``VideoJobs.finish``), counted in the metrics, logged, and
announced to its owner's webhooks (``video.completed``/``video.failed``). Jobs created before
a restart are simply due: the poller resumes them at start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from adapters.errors import ProviderError, ProviderHTTPError
from adapters.video import VideoAdapter, VideoState
from gateway.config import VideoConfig
from gateway.leases import LeaseWorker
from gateway.metrics import Metrics
from gateway.pipeline.settle import price
from gateway.storage import StorageUnavailable, UsageRow
from gateway.video.billing import Reservations, video_usage
from gateway.video.jobs import VideoJobs
from routers.catalog import Catalog

log = structlog.get_logger("gateway.video")
Emit = Callable[..., None]


def next_poll_in(config: VideoConfig, polls: int) -> float:
    """Seconds until the next poll of a job polled ``polls`` times: doubling, capped."""
    return float(min(config.first_poll * 2 ** min(polls, 30), config.max_poll_interval))


class VideoPoller(LeaseWorker):
    """The background loop of one instance (see the module docstring)."""

    unavailable_event = "video_jobs_unavailable"

    def __init__(self, config: VideoConfig, jobs: VideoJobs, adapters: Mapping[str, VideoAdapter],
                 catalog: Catalog, reservations: Reservations,
                 metrics: Metrics, emit: Emit) -> None:
        super().__init__(config.tick)
        self.config = config
        self.jobs = jobs
        self.adapters = adapters
        self.catalog = catalog
        self.reservations = reservations
        self.metrics = metrics
        self.emit = emit

    async def claim(self) -> list[Any]:
        """Lease the jobs due a poll; let go of reservations of jobs ended elsewhere."""
        if self.reservations.held:
            held = list(self.reservations.held)
            self.reservations.release_ended(await self.jobs.statuses(held))
        now = time.time()
        return await self.jobs.claim(self.owner, now, now + self.config.lease)

    async def work(self, row: Any) -> None:
        await self.poll(row)

    async def release(self) -> None:
        await self.jobs.release(self.owner)  # another instance may poll them at once

    async def poll(self, job: Any) -> None:
        """Poll one leased job upstream and record what it said."""
        now = time.time()
        try:
            state = await self._ask(job, now)
        except ProviderError as exc:
            log.info("video_poll_failed", job=job.id, error=str(exc))
            await self.jobs.progress(job.id, self.owner,
                                     next_poll_at=now + next_poll_in(self.config, job.polls))
            return
        except StorageUnavailable as exc:
            log.warning("video_poll_unrecorded", job=job.id, error=str(exc))
            return
        if state.status in ("completed", "failed"):
            await self.finish(job, state, now)
        else:
            await self.jobs.progress(
                job.id, self.owner, status=state.status, progress=state.progress,
                next_poll_at=now + next_poll_in(self.config, job.polls))

    async def _ask(self, job: Any, now: float) -> VideoState:
        if now >= job.expires_at:
            return VideoState(status="failed", error_code="timeout", error=(
                f"The job did not finish within {self.config.max_lifetime:g} s "
                "([video] max_lifetime); the provider was not asked any longer"))
        adapter = self.adapters.get(job.provider)
        if adapter is None:
            return VideoState(status="failed", error_code="provider_unavailable",
                              error=f"Provider '{job.provider}' is no longer configured")
        try:
            return await adapter.poll(job.upstream_id, None)
        except ProviderHTTPError as exc:
            if exc.retryable:
                raise
            return VideoState(status="failed", error_code="upstream_error",
                              error=f"The provider refused the job: {exc.message}")

    async def finish(self, job: Any, state: VideoState, now: float) -> None:
        """End ``job`` as ``state`` says: billed once, counted, logged and announced."""
        completed = state.status == "completed"
        cost = price(self.catalog.get(job.served), video_usage(job.seconds)) if completed else 0.0
        status = 200 if completed else 502
        row = UsageRow(
            request_id=job.request_id, created_at=now, key_id=job.key_id, user=job.user_email,
            dialect="openai", model_requested=job.model, model_served=job.served,
            provider=job.provider, cost_usd=cost, latency_ms=(now - job.created_at) * 1000,
            status=status, error_type="" if completed else state.error_code or "upstream_error",
            row_id="video:" + job.id, operation="video", videos=int(completed),
            video_seconds=job.seconds if completed else 0.0,
        )
        won = await self.jobs.finish(
            job.id, self.owner, row, status=state.status, progress=100 if completed else
            job.progress, error_code=state.error_code, error=state.error[:2000],
            file_ref=state.file_ref, completed_at=now, cost_usd=cost)
        if not won:
            return
        await self.reservations.settle(job, cost, completed)
        self.metrics.record(
            model=job.served, operation="video", status=status, stream=False,
            latency=now - job.created_at, ttft=None, input_tokens=0, output_tokens=0,
            cached_tokens=0, cost=cost, failed_attempts=0, fallback=False, requested=job.model)
        log.info("video_job_ended", job=job.id, status=state.status, model=job.served,
                 cost_usd=round(cost, 8), error=state.error or None)
        data = {"id": job.id, "object": "video", "model": job.model, "status": state.status}
        if not completed:
            data["error"] = {"code": state.error_code, "message": state.error}
        self.emit(job.user_email, f"video.{state.status}", data,
                  event_id=f"evt_{job.id}_{state.status}")
