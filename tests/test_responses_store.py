"""Stored responses through the in-process pipeline, on SQLite and on PostgreSQL: multi-turn by
``previous_response_id`` (the stored conversation before the new input, the previous
instructions left behind), ``GET``/``DELETE /v1/responses/{id}`` and its input items, another
account's id and ``store: false`` (404s in the OpenAI shape), a failed stream kept as failed,
the retention purge, and the bad-input matrix (4xx, never 5xx)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters import canonical as c
from adapters.errors import ProviderHTTPError
from gateway.accounts.keys import create_key
from tests.seam import Answer, Seam, pipeline
from tests.services import pg_query, pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.unit


@pytest.fixture(params=["sqlite", "postgresql"])
async def seam(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Seam]:
    url = ""
    if request.param == "postgresql":
        base = request.getfixturevalue("pg_url")
        schema = f"responses_{time.time_ns()}"
        pg_query(base, f"CREATE SCHEMA {schema}")
        url = f"{base}?options=-csearch_path%3D{schema}"
    async with pipeline(tmp_path, storage_url=url) as opened:
        yield opened


async def respond(seam: Seam, key: str | None = None, **body: Any) -> Any:
    response = await seam.client.post(
        "/v1/responses", json={"model": "scripted/main", **body},
        headers={"authorization": f"Bearer {key or seam.key}"})
    assert response.status_code == 200, response.text
    return response.json()


async def get(seam: Seam, path: str, key: str | None = None) -> Any:
    return await seam.client.get(path, headers={"authorization": f"Bearer {key or seam.key}"})


def texts(message: c.Message) -> list[str]:
    return [block.text for block in message.content if isinstance(block, c.TextBlock)]


async def test_previous_response_id_continues_the_stored_conversation(seam: Seam) -> None:
    seam.adapter.script(Answer("Paris is sunny"), Answer("It is 18C"))
    first = await respond(seam, instructions="Be brief.", input="Weather in Paris?")
    second = await respond(seam, previous_response_id=first["id"], input="And in degrees?")
    assert second["id"] != first["id"]
    assert second["output"][0]["content"][0]["text"] == "It is 18C"
    sent = seam.adapter.calls[-1].request
    assert sent is not None
    assert [(m.role, texts(m)) for m in sent.messages] == [
        ("user", ["Weather in Paris?"]), ("assistant", ["Paris is sunny"]),
        ("user", ["And in degrees?"])]
    assert sent.system == []  # the first request's instructions are not carried over
    third = await respond(seam, previous_response_id=second["id"], input="Thanks")
    assert third["status"] == "completed"
    assert len(seam.adapter.calls[-1].request.messages) == 5  # type: ignore[union-attr]


async def test_retrieve_delete_and_input_items(seam: Seam) -> None:
    first = await respond(seam, input="one")
    second = await respond(seam, previous_response_id=first["id"],
                           input=[{"role": "user", "content": "two"}])
    stored = await get(seam, f"/v1/responses/{second['id']}")
    assert stored.status_code == 200 and stored.json() == second
    listed = (await get(seam, f"/v1/responses/{second['id']}/input_items?order=asc")).json()
    assert [item["type"] for item in listed["data"]] == ["message", "message", "message"]
    assert listed["data"][0]["content"] == "one" and listed["data"][2]["content"] == "two"
    assert listed["has_more"] is False and listed["first_id"] == listed["data"][0]["id"]
    paged = (await get(seam, f"/v1/responses/{second['id']}/input_items"
                             f"?limit=1&after={listed['data'][2]['id']}")).json()
    assert [item["id"] for item in paged["data"]] == [listed["data"][1]["id"]]
    assert paged["has_more"] is True
    deleted = await seam.client.delete(f"/v1/responses/{first['id']}",
                                       headers={"authorization": f"Bearer {seam.key}"})
    assert deleted.json() == {"id": first["id"], "object": "response", "deleted": True}
    assert (await get(seam, f"/v1/responses/{first['id']}")).status_code == 404
    gone = await seam.client.post("/v1/responses", json={
        "model": "scripted/main", "input": "x", "previous_response_id": first["id"]},
        headers={"authorization": f"Bearer {seam.key}"})
    assert gone.status_code == 404


async def test_another_accounts_response_is_not_found(seam: Seam) -> None:
    mine = await respond(seam, input="secret plans")
    other, _ = await create_key(seam.gateway.store, "gw-", user="eve@example.com", tier="")
    for path in (f"/v1/responses/{mine['id']}", f"/v1/responses/{mine['id']}/input_items"):
        refused = await get(seam, path, other)
        assert refused.status_code == 404
        error = refused.json()["error"]
        assert error["type"] == "invalid_request_error" and mine["id"] in error["message"]
    continued = await seam.client.post("/v1/responses", json={
        "model": "scripted/main", "input": "go on", "previous_response_id": mine["id"]},
        headers={"authorization": f"Bearer {other}"})
    assert continued.status_code == 404
    assert continued.json()["error"]["param"] == "previous_response_id"
    assert continued.json()["error"]["code"] == "previous_response_not_found"
    same_account, _ = await create_key(seam.gateway.store, "gw-", user="tests@example.com",
                                       tier="")
    assert (await get(seam, f"/v1/responses/{mine['id']}", same_account)).status_code == 200


async def test_store_false_keeps_nothing(seam: Seam) -> None:
    answer = await respond(seam, input="forget me", store=False)
    assert (await get(seam, f"/v1/responses/{answer['id']}")).status_code == 404
    events = await seam.client.post("/v1/responses", json={
        "model": "scripted/main", "input": "me too", "store": False, "stream": True},
        headers={"authorization": f"Bearer {seam.key}"})
    final = json.loads(events.text.strip().rsplit("data: ", 1)[-1])
    assert final["type"] == "response.completed"
    assert (await get(seam, f"/v1/responses/{final['response']['id']}")).status_code == 404


def stream_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


async def test_a_stream_is_stored_before_it_ends_and_a_broken_one_as_failed(seam: Seam) -> None:
    seam.adapter.script(Answer("streamed words"),
                        Answer("half an", broken=ProviderHTTPError(500, "boom")))
    headers = {"authorization": f"Bearer {seam.key}"}
    body = {"model": "scripted/main", "input": "go", "stream": True}
    done = stream_events((await seam.client.post("/v1/responses", json=body,
                                                 headers=headers)).text)[-1]
    assert done["type"] == "response.completed"
    stored = (await get(seam, f"/v1/responses/{done['response']['id']}")).json()
    assert stored == done["response"]
    broken = stream_events((await seam.client.post(
        "/v1/responses", json={**body, "previous_response_id": stored["id"]},
        headers=headers)).text)
    assert [event["type"] for event in broken[-2:]] == ["error", "response.failed"]
    failed = (await get(seam, f"/v1/responses/{broken[-1]['response']['id']}")).json()
    assert failed["status"] == "failed" and failed["error"]["message"]
    assert failed["previous_response_id"] == stored["id"]


async def test_expired_responses_are_purged_and_no_longer_found(seam: Seam) -> None:
    old = await respond(seam, input="old")
    keeper = seam.gateway.responses
    assert await keeper.purge(now=time.time()) == 0
    assert (await get(seam, f"/v1/responses/{old['id']}")).status_code == 200
    assert await keeper.purge(now=time.time() + 31 * 86400) == 1
    assert (await get(seam, f"/v1/responses/{old['id']}")).status_code == 404


@pytest.mark.parametrize(("method", "path", "body", "status", "param"), [
    ("GET", "/v1/responses/resp_unknown", None, 404, None),
    ("DELETE", "/v1/responses/resp_unknown", None, 404, None),
    ("GET", "/v1/responses/" + "x" * 5000, None, 404, None),
    ("GET", "/v1/responses/resp%00x", None, 404, None),
    ("GET", "/v1/responses/{id}/input_items?limit=%C2%B2", None, 400, "limit"),
    ("GET", "/v1/responses/resp_unknown/input_items", None, 404, None),
    ("GET", "/v1/responses/{id}/input_items?order=sideways", None, 400, "order"),
    ("GET", "/v1/responses/{id}/input_items?limit=0", None, 400, "limit"),
    ("GET", "/v1/responses/{id}/input_items?limit=abc", None, 400, "limit"),
    ("GET", "/v1/responses/{id}/input_items?after=nope", None, 400, "after"),
    ("POST", "/v1/responses", {"previous_response_id": "resp_nope", "input": "x"}, 404,
     "previous_response_id"),
    ("POST", "/v1/responses", {"previous_response_id": "resp\u0000", "input": "x"}, 404,
     "previous_response_id"),
    ("POST", "/v1/responses", {"previous_response_id": "", "input": "x"}, 400,
     "previous_response_id"),
    ("POST", "/v1/responses", {"previous_response_id": ["a"], "input": "x"}, 400,
     "previous_response_id"),
    ("POST", "/v1/responses", {"store": "yes", "input": "x"}, 400, "store"),
    ("POST", "/v1/responses", {"previous_response_id": "{id}"}, 400, "input"),
])
async def test_bad_input_is_a_4xx(seam: Seam, method: str, path: str, body: Any, status: int,
                                  param: str | None) -> None:
    stored = await respond(seam, input="hello")
    headers = {"authorization": f"Bearer {seam.key}"}
    path = path.replace("{id}", stored["id"])
    if body is not None:
        body = json.loads(json.dumps({"model": "scripted/main", **body}).replace(
            "{id}", stored["id"]))
    response = await seam.client.request(method, path, json=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["param"] == param


async def test_no_key_is_a_401(seam: Seam) -> None:
    for method in ("GET", "DELETE"):
        response = await seam.client.request(method, "/v1/responses/resp_x")
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"


def test_retention_is_configured_in_days() -> None:
    from gateway.config import ConfigError, parse_config

    assert parse_config("").responses.retention_days == 30
    assert parse_config("[responses]\nretention_days = 7").responses.retention_days == 7
    with pytest.raises(ConfigError, match=r"responses\.retention_days"):
        parse_config("[responses]\nretention_days = 0")
