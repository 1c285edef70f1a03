"""Video jobs as callers see them: create (admitted, reserved, submitted upstream, stored),
retrieve, and the finished file relayed in chunks. Polling and billing are the poller's
(``gateway.video.poller``); docs/video.md has the whole story."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from adapters.errors import ProviderError
from adapters.features import RequestFeatures
from adapters.video import Download, VideoAdapter, VideoRequest
from gateway.accounts.keys import Principal, key_from_headers
from gateway.admission import Admission, Ticket
from gateway.config import GatewayConfig
from gateway.errors import (
    AllTargetsFailed,
    BadRequest,
    GatewayError,
    InsufficientBalance,
    ModelNotFound,
    NotFound,
    from_provider_error,
    from_routing_refusal,
)
from gateway.pipeline.settle import price
from gateway.video.billing import Reservations, refunds_of, video_usage
from gateway.video.jobs import VideoJobs
from gateway.video.poller import VideoPoller
from routers.catalog import Deployment
from routers.plan import Plan, Planner
from routers.refusals import RoutingRefused


def video_object(job: Any) -> dict[str, Any]:
    """A job in the shape of OpenAI's ``Video`` (what the openai SDK parses)."""
    error = {"code": job.error_code or "upstream_error", "message": job.error} if (
        job.status == "failed") else None
    return {
        "id": job.id, "object": "video", "model": job.model, "status": job.status,
        "progress": job.progress, "created_at": int(job.created_at),
        "completed_at": int(job.completed_at) if job.completed_at else None,
        "expires_at": None, "prompt": job.prompt, "seconds": str(int(job.seconds)),
        "size": job.size, "error": error, "remixed_from_video_id": None,
    }


class VideoService:
    """Create, retrieve and download video jobs (see the module docstring)."""

    def __init__(self, config: GatewayConfig, keys: Any, planner: Planner, admission: Admission,
                 jobs: VideoJobs, adapters: Mapping[str, VideoAdapter], reservations: Reservations,
                 poller: VideoPoller) -> None:
        self.config = config
        self.keys = keys
        self.planner = planner
        self.admission = admission
        self.jobs = jobs
        self.adapters = adapters
        self.reservations = reservations
        self.poller = poller

    async def principal(self, authorization: bytes | None, api_key: bytes | None) -> Principal:
        """The caller, as admission sees it (blocked accounts are admission's to refuse)."""
        principal: Principal = await self.keys.resolve(key_from_headers(authorization, api_key))
        return principal

    def plan(self, model: str) -> tuple[Plan, list[Deployment]]:
        """The plan for ``model`` and its video targets; 404 unknown, 400 not a video model."""
        try:
            plan = self.planner.plan(model, RequestFeatures, None, mode="video")
        except RoutingRefused as refusal:
            raise from_routing_refusal(refusal) from refusal
        if plan is None:
            raise ModelNotFound(
                f"Unknown model '{model}': GET /v1/models lists the models you can use",
                param="model")
        targets = [t for t in plan.targets if t.mode == "video" and t.provider in self.adapters]
        if not targets:
            mode = plan.targets[0].mode
            raise BadRequest(f"Model '{model}' is a {mode} model; this endpoint serves video "
                             "models (mode = \"video\")", param="model", code="wrong_mode")
        return plan, targets

    async def reserve(self, principal: Principal, ticket: Ticket, estimate: float) -> None:
        """Reserve the video's price on a prepaid balance, beyond what admission reserved.
        Jobs run on the operator's provider keys (a poll needs the key that created it)."""
        ticket.byok = {}
        ticket.prepaid = ticket.tier.prepaid
        extra = estimate - ticket.reserved_usd
        ticket.estimate_usd = estimate
        if not ticket.prepaid or extra <= 0:
            return
        cache = self.admission.cache
        state = await cache.user(principal)
        where = await cache.reserve(state, extra)
        if where is None:
            raise InsufficientBalance(
                f"Insufficient balance: ${max(cache.available(state), 0.0):.6f} left, this video "
                f"costs up to ${estimate:.6f}; top up or ask for fewer seconds")
        ticket.reserved_usd += extra
        ticket.reserved_in = where

    async def submit(self, targets: list[Deployment],
                     request: VideoRequest) -> tuple[Deployment, str, int]:
        """Create the job upstream on the first target that takes it: (target, its job id,
        fallback level)."""
        failure: GatewayError = AllTargetsFailed("No provider took the video job")
        for level, target in enumerate(targets):
            try:
                job_id = await self.adapters[target.provider].create(
                    target.upstream, request, None)
                return target, job_id, level
            except ProviderError as exc:
                failure = from_provider_error(exc, target.id)
                if not exc.retryable:
                    break
        raise failure

    async def store(self, principal: Principal, request_id: str, model: str,
                    request: VideoRequest, submitted: tuple[Deployment, str, int],
                    ticket: Ticket) -> Any:
        """The new job's row, written and held for billing; the poller is told."""
        served, upstream_id, _ = submitted
        now = time.time()
        video = self.config.video
        values: dict[str, Any] = {
            "id": "video_" + secrets.token_hex(16), "user_email": principal.user,
            "key_id": principal.key_id, "request_id": request_id, "model": model,
            "served": served.id, "provider": served.provider, "upstream_id": upstream_id,
            "prompt": request.prompt, "size": request.size, "seconds": float(request.seconds),
            "status": "queued", "progress": 0, "error_code": "", "error": "",
            "completed_at": None, "created_at": now, "expires_at": now + video.max_lifetime,
            "next_poll_at": now + video.first_poll, "prepaid": ticket.prepaid,
            "refunds": refunds_of(ticket),
        }
        await self.jobs.insert(**values)
        self.reservations.hold(values["id"], ticket, served)
        self.poller.wake()
        return _Row(values)

    async def find(self, principal: Principal, job_id: str) -> Any:
        """The caller's job ``job_id``; 404 for an unknown one and for another user's."""
        job = await self.jobs.get(job_id, principal.user, principal.key_id)
        if job is None:
            raise NotFound(f"No video job '{job_id}' (GET it with the key that created it)",
                           param="video_id")
        return job

    async def download(self, job: Any) -> Download:
        """The finished file of ``job``, opened upstream; 400 if it is not finished."""
        if job.status != "completed":
            raise BadRequest(f"Video '{job.id}' is {job.status}; its content is there once "
                             "it is completed", code="video_not_ready")
        adapter = self.adapters.get(job.provider)
        if adapter is None:
            raise NotFound(f"The provider of video '{job.id}' is no longer configured")
        try:
            return await adapter.download(job.upstream_id, job.file_ref, None)
        except ProviderError as exc:
            raise from_provider_error(exc, job.served) from exc

    def price(self, target: Deployment, seconds: int) -> float:
        """What ``seconds`` of video on ``target`` cost (reserved at creation)."""
        return price(target, video_usage(seconds))


class _Row:
    """A row just written, read like the rows the database answers."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


async def relay(download: Download) -> AsyncIterator[bytes]:
    """A download's chunks, its connection released however the relay ends."""
    try:
        async for chunk in download.chunks():
            yield chunk
    finally:
        download.close()
