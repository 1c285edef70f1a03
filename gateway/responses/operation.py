"""The Responses API as a pipeline operation: chat completions' in the Responses dialect, but
for the ids of its translated whole answers.

A translated answer's id is the gateway's own (``resp_<random>``; streams use the request id),
never derived from the upstream's: upstreams that answer every call with the same id exist,
and a stored response is found by its id.
"""

from __future__ import annotations

import uuid

import msgspec

from adapters import canonical as c
from adapters.base import RawReply
from gateway.pipeline.operation import ChatOperation
from routers.catalog import Deployment


class ResponsesOperation(ChatOperation):
    """``POST /v1/responses`` (see the module docstring)."""

    name = "responses"

    def reply(
        self, reply: RawReply | c.Response, served: Deployment
    ) -> tuple[bytes, c.Usage | None]:
        if isinstance(reply, c.Response):
            reply = msgspec.structs.replace(reply, id=f"resp_{uuid.uuid4().hex}")
        return super().reply(reply, served)
