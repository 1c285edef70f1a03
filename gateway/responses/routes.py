"""``GET`` and ``DELETE /v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items``: the
openai SDK's ``responses.retrieve``, ``responses.delete`` and ``responses.input_items.list``.

Any key of the account that stored a response reads it (a key of nobody's account: only its
own); for every other caller the id does not exist (404, the same answer as an unknown id).
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.accounts.http import caller, guard, query_int
from gateway.accounts.services import AccountServices
from gateway.errors import BadRequest
from gateway.responses.keeper import ResponseKeeper, owner_of
from gateway.responses.memory import not_found
from gateway.storage.records import StoredResponse

_items = msgspec.json.Decoder(list[dict[str, Any]])


def listed_items(row: StoredResponse) -> list[dict[str, Any]]:
    """The input items of a stored response, oldest first, each with an ``id`` (items sent
    without one get ``in_<position>_<response id>``, stable across calls, for paging)."""
    items = _items.decode(row.input_items)
    for index, item in enumerate(items):
        item.setdefault("id", f"in_{index}_{row.id}")
        item.setdefault("type", "message")
    return items


def page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    """One page of items: ``order`` (desc by default, as OpenAI's), ``after`` an id, ``limit``."""
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("'order' must be 'asc' or 'desc'", param="order")
    limit = query_int(request, "limit", "20", 100)
    ordered = items if order == "asc" else items[::-1]
    after = request.query_params.get("after")
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise BadRequest(f"'after': no input item '{after}' in this response", param="after")
        ordered = ordered[ids.index(after) + 1:]
    data = ordered[:limit]
    return {"object": "list", "data": data, "has_more": len(ordered) > limit,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


def response_routes(keeper: ResponseKeeper, accounts: AccountServices) -> list[Route]:
    """The stored-response routes (see the module docstring)."""

    async def stored(request: Request) -> tuple[str, StoredResponse]:
        owner = owner_of(await caller(accounts, request))
        response_id = request.path_params["response_id"]
        row = await keeper.find(owner, response_id)
        if row is None:
            raise not_found(response_id)
        return owner, row

    async def retrieve(request: Request) -> Response:
        _, row = await stored(request)
        return Response(row.response.encode(), media_type="application/json")

    async def delete(request: Request) -> Any:
        owner, row = await stored(request)
        await keeper.delete(owner, row.id)
        return {"id": row.id, "object": "response", "deleted": True}

    async def input_items(request: Request) -> Any:
        _, row = await stored(request)
        return page(listed_items(row), request)

    return [
        Route("/v1/responses/{response_id}", guard(retrieve), methods=["GET"]),
        Route("/v1/responses/{response_id}", guard(delete), methods=["DELETE"]),
        Route("/v1/responses/{response_id}/input_items", guard(input_items), methods=["GET"]),
    ]
