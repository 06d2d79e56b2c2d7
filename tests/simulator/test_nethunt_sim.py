"""The NetHunt simulator on its own: auth refusal, search syntax, field-action semantics, recording."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from simulator.nethunt import NetHuntState, create_nethunt_app

B = "/api/v1/zapier"


class _NoAuth(httpx.Auth):
    """Send the request exactly as given, without the client's default Basic auth."""


NO_AUTH = _NoAuth()


@pytest.fixture
async def sim() -> AsyncIterator[tuple[NetHuntState, httpx.AsyncClient]]:
    state = NetHuntState(email="me@example.com", api_key="key-1")
    folder = state.add_folder("Leads", folder_id="leads")
    state.add_record(folder, {"Name": "Іван Петренко", "Phone": ["+380 99 482 95 73"], "Status": "New"}, "r1")
    state.add_record(folder, {"Name": "Марія Іванова", "Phone": ["+380671112233"], "Status": "Called"}, "r2")
    state.add_record(state.add_folder("Other"), {"Name": "Іван Інший"}, "r3")
    app = create_nethunt_app(state)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://nh", auth=("me@example.com", "key-1")
    ) as http:
        yield state, http


def basic(user: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer key-1",
        basic("me@example.com", "wrong"),
        basic("other@example.com", "key-1"),
        basic("me@example.com", ""),
        "Basic not-base64!!",
    ],
)
async def test_auth_refusal(sim: tuple[NetHuntState, httpx.AsyncClient], authorization: str | None) -> None:
    state, http = sim
    headers = {"Authorization": authorization} if authorization else {}
    answer = await http.get(f"{B}/triggers/readable-folder", headers=headers, auth=NO_AUTH)
    assert answer.status_code == 401
    assert state.requests[-1].path == f"{B}/triggers/readable-folder"
    assert (await http.get(f"{B}/triggers/readable-folder")).status_code == 200


async def search(http: httpx.AsyncClient, query: str, folder: str = "leads", limit: int = 10) -> list[str]:
    answer = await http.get(f"{B}/searches/find-record/{folder}", params={"query": query, "limit": limit})
    assert answer.status_code == 200, answer.text
    return [r["recordId"] for r in answer.json()]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"Phone":+380994829573', ["r1"]),
        ("Phone:380994829573", ["r1"]),
        ('"Phone":"+380 99 482 95 73"', ["r1"]),
        ("phone:0994829573", ["r1"]),
        ("Name:Іван", ["r1", "r2"]),
        ("Петренко", ["r1"]),
        ("Status:(New OR Called)", ["r1", "r2"]),
        ("Іван AND Status:Called", ["r2"]),
        ('"Phone":+380000000000', []),
        ("Status:Won", []),
    ],
)
async def test_search(sim: tuple[NetHuntState, httpx.AsyncClient], query: str, expected: list[str]) -> None:
    assert await search(sim[1], query) == expected


async def test_search_limits_and_errors(sim: tuple[NetHuntState, httpx.AsyncClient]) -> None:
    _, http = sim
    default = await http.get(f"{B}/searches/find-record/leads", params={"query": "Іван"})
    assert len(default.json()) == 1  # NetHunt's documented default limit is 1
    assert (await http.get(f"{B}/searches/find-record/leads")).status_code == 400
    assert (await http.get(f"{B}/searches/find-record/nope", params={"query": "x"})).status_code == 404
    by_id = await http.get(f"{B}/searches/find-record/leads", params={"recordId": "r3"})
    assert by_id.json() == []  # r3 lives in another folder


async def test_field_actions(sim: tuple[NetHuntState, httpx.AsyncClient]) -> None:
    state, http = sim
    url = f"{B}/actions/update-record/r1"
    actions = {"Status": {"add": "Won"}, "Phone": {"add": "+380501234567"}, "Note": {"add": "x"}}
    assert (await http.post(url, json={"fieldActions": actions})).status_code == 200
    assert state.records["r1"].fields["Status"] == "New"
    assert state.records["r1"].fields["Phone"] == ["+380 99 482 95 73", "+380501234567"]
    assert state.records["r1"].fields["Note"] == "x"
    await http.post(url, params={"overwrite": "true"}, json={"fieldActions": {"Status": {"add": "Won"}}})
    assert state.records["r1"].fields["Status"] == "Won"
    await http.post(url, json={"fieldActions": {"Status": {"add": "Lost", "overwrite": True}}})
    assert state.records["r1"].fields["Status"] == "Lost"
    await http.post(url, json={"fieldActions": {"Phone": {"remove": "+380501234567"}}})
    assert state.records["r1"].fields["Phone"] == ["+380 99 482 95 73"]
    assert (await http.post(url, json={"overwrite": True})).status_code == 400
    assert (await http.post(f"{B}/actions/update-record/nope", json={"fieldActions": {}})).status_code == 404


async def test_recording_and_failure_injection(sim: tuple[NetHuntState, httpx.AsyncClient]) -> None:
    state, http = sim
    state.clear_requests()
    state.fail_next(502, times=2, body={"error": "bad gateway"})
    statuses = [
        (await http.post(f"{B}/actions/create-comment/r1", json={"text": "hi"})).status_code for _ in range(3)
    ]
    assert statuses == [502, 502, 200]
    assert len(state.comments) == 1
    assert [r.json for r in state.requests] == [{"text": "hi"}] * 3
    assert state.requests[0].header("content-type") == "application/json"
    assert (await http.post(f"{B}/actions/create-comment/r1", json={"text": " "})).status_code == 400
