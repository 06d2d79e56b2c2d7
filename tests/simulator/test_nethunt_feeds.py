"""The NetHunt simulator's call logs and its Zapier polling triggers (new-comment, new-call-log)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from simulator.nethunt import NetHuntState, create_nethunt_app, parse_time, stamp

B = "/api/v1/zapier"
T0 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)


class Clock:
    """A settable clock for `NetHuntState.clock`, so createdAt values are known in advance."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, minutes: float) -> str:
        self.now = T0 + timedelta(minutes=minutes)
        return stamp(self.now)


@pytest.fixture
async def sim() -> AsyncIterator[tuple[NetHuntState, Clock, httpx.AsyncClient]]:
    clock = Clock()
    state = NetHuntState(email="me@example.com", api_key="key-1", clock=clock)
    state.add_record(state.add_folder("Leads", folder_id="leads"), {"Name": "Іван"}, "r1")
    state.add_record("leads", {"Name": "Марія"}, "r2")
    state.add_record(state.add_folder("Other", folder_id="other"), {"Name": "Інший"}, "r3")
    app = create_nethunt_app(state)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://nh", auth=("me@example.com", "key-1")
    ) as http:
        yield state, clock, http


async def call_log(http: httpx.AsyncClient, record: str, body: Any) -> httpx.Response:
    return await http.post(f"{B}/actions/create-call-log/{record}", json=body)


async def test_create_call_log_stores_and_answers_it(sim: tuple[NetHuntState, Clock, Any]) -> None:
    state, clock, http = sim
    created = clock.at(5)
    body = {"text": "Дзвінок: зацікавлений", "time": "2025-03-01T09:58:00Z", "duration": 1.5}
    answer = await call_log(http, "r1", body)
    assert answer.status_code == 200
    expected = {
        "callLogId": answer.json()["callLogId"],
        "recordId": "r1",
        "text": "Дзвінок: зацікавлений",
        "time": "2025-03-01T09:58:00Z",
        "duration": 1.5,
        "createdAt": created,
    }
    assert answer.json() == expected and state.call_logs == [expected]
    assert created == "2025-03-01T10:05:00.000Z"
    second = (await call_log(http, "r2", {"text": "ще раз"})).json()
    assert second["time"] == second["createdAt"] and second["duration"] is None
    assert second["callLogId"] != expected["callLogId"] and len(state.call_logs) == 2


@pytest.mark.parametrize(
    ("record", "body", "status", "error"),
    [
        ("nope", {"text": "hi"}, 404, "Record nope not found"),
        ("r1", {}, 400, "text is required"),
        ("r1", {"text": ""}, 400, "text is required"),
        ("r1", {"text": "  "}, 400, "text is required"),
        ("r1", ["text"], 400, "text is required"),
        ("r1", {"text": "hi", "time": "yesterday"}, 400, "time must be an ISO-8601 date-time"),
        ("r1", {"text": "hi", "time": 1740823200}, 400, "time must be an ISO-8601 date-time"),
        ("r1", {"text": "hi", "duration": "5"}, 400, "duration must be a non-negative number of minutes"),
        ("r1", {"text": "hi", "duration": -1}, 400, "duration must be a non-negative number of minutes"),
        ("r1", {"text": "hi", "duration": True}, 400, "duration must be a non-negative number of minutes"),
    ],
)
async def test_create_call_log_refusals(
    sim: tuple[NetHuntState, Clock, Any], record: str, body: Any, status: int, error: str
) -> None:
    state, _, http = sim
    answer = await call_log(http, record, body)
    assert (answer.status_code, answer.json()) == (status, {"error": error})
    assert state.call_logs == []


async def test_malformed_json_is_a_400(sim: tuple[NetHuntState, Clock, httpx.AsyncClient]) -> None:
    _, _, http = sim
    answer = await http.post(f"{B}/actions/create-call-log/r1", content=b"{not json")
    assert answer.status_code == 400


async def comment(http: httpx.AsyncClient, record: str, text: str) -> None:
    assert (await http.post(f"{B}/actions/create-comment/{record}", json={"text": text})).status_code == 200


async def poll(http: httpx.AsyncClient, trigger: str, folder: str = "leads", **params: Any) -> list[Any]:
    answer = await http.get(f"{B}/triggers/{trigger}/{folder}", params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


async def test_new_comment_trigger(sim: tuple[NetHuntState, Clock, httpx.AsyncClient]) -> None:
    state, clock, http = sim
    clock.at(1)
    await comment(http, "r1", "first")
    clock.at(2)
    await comment(http, "r3", "other folder")
    await comment(http, "r2", "second")
    clock.at(3)
    await comment(http, "r1", "third")
    await comment(http, "r1", "fourth, same millisecond")
    items = await poll(http, "new-comment")
    assert [i["text"] for i in items] == ["fourth, same millisecond", "third", "second", "first"]
    assert all(set(i) == {"recordId", "commentId", "text", "createdAt"} for i in items)
    assert items[-1] == {k: state.comments[0][k] for k in ("recordId", "commentId", "text", "createdAt")}
    assert [i["text"] for i in await poll(http, "new-comment", "other")] == ["other folder"]
    since = await poll(http, "new-comment", since=stamp(T0 + timedelta(minutes=2)))
    assert [i["text"] for i in since] == ["fourth, same millisecond", "third", "second"]  # at or after
    limited = await poll(http, "new-comment", since="2025-03-01T10:01:30+00:00", limit=2)
    assert [i["text"] for i in limited] == ["fourth, same millisecond", "third"]
    assert await poll(http, "new-comment", since="2025-03-01T11:00:00Z") == []


async def test_new_call_log_trigger(sim: tuple[NetHuntState, Clock, httpx.AsyncClient]) -> None:
    _, clock, http = sim
    clock.at(1)
    await call_log(http, "r1", {"text": "old", "time": "2025-03-01T09:00:00Z", "duration": 2})
    clock.at(4)
    await call_log(http, "r2", {"text": "new"})
    await call_log(http, "r3", {"text": "elsewhere"})
    items = await poll(http, "new-call-log")
    assert [i["text"] for i in items] == ["new", "old"]
    assert items[1] == {
        "recordId": "r1",
        "callLogId": items[1]["callLogId"],
        "text": "old",
        "time": "2025-03-01T09:00:00Z",
        "duration": 2,
        "createdAt": "2025-03-01T10:01:00.000Z",
    }
    # `since` filters on createdAt, not on the call's own `time`.
    assert [i["text"] for i in await poll(http, "new-call-log", since="2025-03-01T10:01:00Z")] == [
        "new",
        "old",
    ]
    assert [i["text"] for i in await poll(http, "new-call-log", since="2025-03-01T10:02:00Z")] == ["new"]
    assert [i["text"] for i in await poll(http, "new-call-log", limit=1)] == ["new"]
    assert len(await poll(http, "new-comment")) == 0


async def test_default_limit_is_100(sim: tuple[NetHuntState, Clock, httpx.AsyncClient]) -> None:
    _, _, http = sim
    for i in range(105):
        await comment(http, "r1", f"c{i}")
    items = await poll(http, "new-comment")
    assert len(items) == 100 and items[0]["text"] == "c104"
    assert len(await poll(http, "new-comment", limit=105)) == 105


@pytest.mark.parametrize("trigger", ["new-comment", "new-call-log"])
async def test_trigger_refusals(sim: tuple[NetHuntState, Clock, httpx.AsyncClient], trigger: str) -> None:
    state, _, http = sim
    missing = await http.get(f"{B}/triggers/{trigger}/nope")
    assert (missing.status_code, missing.json()) == (404, {"error": "Folder nope not found"})
    for params in ({"since": "soon"}, {"limit": "0"}, {"limit": "x"}):
        assert (await http.get(f"{B}/triggers/{trigger}/leads", params=params)).status_code == 400
    unauthorized = await http.get(f"{B}/triggers/{trigger}/leads", auth=("me@example.com", "wrong"))
    assert unauthorized.status_code == 401
    state.fail_next(503)
    assert (await http.get(f"{B}/triggers/{trigger}/leads")).status_code == 503
    assert (await http.get(f"{B}/triggers/{trigger}/leads")).status_code == 200
    assert state.requests[-1].path == f"{B}/triggers/{trigger}/leads"


async def test_call_log_failure_injection(sim: tuple[NetHuntState, Clock, httpx.AsyncClient]) -> None:
    state, _, http = sim
    state.clear_requests()
    state.fail_next(500, times=2)
    statuses = [(await call_log(http, "r1", {"text": "hi"})).status_code for _ in range(3)]
    assert statuses == [500, 500, 200] and len(state.call_logs) == 1
    assert [r.json for r in state.requests_to("POST", f"{B}/actions/create-call-log/")] == [
        {"text": "hi"}
    ] * 3


def test_parse_time() -> None:
    assert parse_time("2025-03-01T10:00:00Z") == T0
    assert parse_time("2025-03-01T12:00:00+02:00") == T0
    assert parse_time("2025-03-01T12:00:00 02:00") == T0  # a `+` a query string decoded as a space
    assert parse_time("2025-03-01T10:00:00") == T0  # naive means UTC
    assert parse_time("2025-03-01 10:00:00") == T0
    assert parse_time("not a time") is None
    assert stamp(T0 + timedelta(microseconds=123_456)) == "2025-03-01T10:00:00.123Z"
