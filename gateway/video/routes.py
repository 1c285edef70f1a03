"""The video routes: ``POST /v1/video/generations`` and ``POST /v1/videos`` create a job,
``GET …/{id}`` reads it, ``GET …/{id}/content`` relays its file (docs/video.md)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.accounts.keys import Principal
from gateway.errors import BadRequest, GatewayError
from gateway.pipeline.intake import Head, account_headers, read_body
from gateway.pipeline.outcome import Facts
from gateway.pipeline.settle import response_headers
from gateway.video.request import parse_video_request
from gateway.video.service import VideoService, relay, video_object

_JSON = ((b"content-type", b"application/json"),)


def _headers(pairs: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode(): value.decode("latin-1") for name, value in pairs
            if name != b"content-type"}


class VideoRoutes:
    """The handlers, over one ``VideoService``."""

    def __init__(self, service: VideoService) -> None:
        self.service = service

    async def _caller(self, request: Request) -> tuple[Head, Principal]:
        head = Head(request.scope["headers"])
        return head, await self.service.principal(head.authorization, head.api_key)

    async def create(self, request: Request) -> Response:
        """Admit, reserve, submit upstream and store a job; answer it ``queued``."""
        service = self.service
        head, principal = await self._caller(request)
        body = await read_body(request.receive, service.config.server.max_body_bytes,
                               head.declared)
        model, spec = parse_video_request(body, request.headers.get("content-type", ""),
                                          service.config.video)
        plan, targets = service.plan(model)
        ticket = await service.admission.admit(principal, targets[0], len(body), 1)
        try:
            await service.reserve(principal, ticket, service.price(targets[0], spec.seconds))
            submitted = await service.submit(targets, spec)
            job = await service.store(principal, head.request_id, model, spec, submitted,
                                      ticket)
        except BaseException as exc:
            service.admission.settle(ticket, None, None, 0.0)
            if isinstance(exc, GatewayError):
                exc.headers.update(_headers(list(ticket.headers)))
            raise
        facts = Facts(head.request_id, head.started, head.created_at, principal, model,
                      router=plan.router, ticket=ticket, headers=account_headers(ticket, plan))
        headers = response_headers(facts, _JSON, submitted[0], submitted[2])
        return Response(msgspec.json.encode(video_object(job)), headers=_headers(headers),
                        media_type="application/json")

    async def retrieve(self, request: Request) -> Response:
        """The job as it stands; ``openai-poll-after-ms`` says when to ask again, and
        ``X-Cost-USD`` what an ended job was billed."""
        head, principal = await self._caller(request)
        job = await self.service.find(principal, request.path_params["video_id"])
        headers = {"x-request-id": head.request_id}
        if job.status in ("queued", "in_progress"):
            wait = max(job.next_poll_at - time.time(), 0.2)
            headers["openai-poll-after-ms"] = str(int(wait * 1000))
        else:  # ended: what it was billed
            headers["x-cost-usd"] = f"{job.cost_usd:.8f}"
        return Response(msgspec.json.encode(video_object(job)), headers=headers,
                        media_type="application/json")

    async def content(self, request: Request) -> Response:
        """The finished file, relayed chunk by chunk from the provider."""
        head, principal = await self._caller(request)
        job = await self.service.find(principal, request.path_params["video_id"])
        variant = request.query_params.get("variant", "video")
        if variant != "video":
            raise BadRequest(f"variant '{variant}' is not available; this gateway serves "
                             "'video'", param="variant")
        download = await self.service.download(job)
        upstream: Any = download.headers
        headers = {"x-request-id": head.request_id,
                   "content-disposition": f'attachment; filename="{job.id}.mp4"'}
        if upstream.get("Content-Length"):
            headers["content-length"] = upstream["Content-Length"]
        return StreamingResponse(relay(download), headers=headers,
                                 media_type=upstream.get("Content-Type") or "video/mp4")


def video_routes(service: VideoService) -> list[Route]:
    """The routes under both prefixes."""
    routes = VideoRoutes(service)
    return [
        route
        for prefix in ("/v1/video/generations", "/v1/videos")
        for route in (
            Route(prefix, routes.create, methods=["POST"]),
            Route(prefix + "/{video_id}", routes.retrieve, methods=["GET"]),
            Route(prefix + "/{video_id}/content", routes.content, methods=["GET"]),
        )
    ]
