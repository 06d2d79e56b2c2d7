"""NetHuntApi against the NetHunt simulator: real paths, Basic auth, payloads and error mapping."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from happ_integ.clients.nethunt import NetHuntApi, NetHuntRecord, iso_time
from happ_integ.errors import NotFound, Unauthorized, UpstreamError, UpstreamRejected
from simulator.nethunt import NetHuntState, create_nethunt_app

BASE = "http://nethunt.test/api/v1/zapier"
PHONE = "+380994829573"


@dataclass
class Env:
    state: NetHuntState
    api: NetHuntApi
    http: httpx.AsyncClient
    folder: str
    record: str


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    state = NetHuntState(email="me@example.com", api_key="nh-key-0123456789")
    folder = state.add_folder("Leads", folder_id="leads")
    record = state.add_record(
        folder, {"Name": "Іван Петренко", "Phone": [PHONE], "Status": "New", "Tags": ["a"]}
    )
    state.add_record(folder, {"Name": "Марія", "Phone": ["+380671112233"], "Status": "New"})
    transport = httpx.ASGITransport(app=create_nethunt_app(state))
    async with httpx.AsyncClient(transport=transport) as http:
        yield Env(state, NetHuntApi(http, BASE, state.email, state.api_key), http, folder, record)


async def test_list_folders_sends_basic_auth(env: Env) -> None:
    folders = await env.api.list_folders()
    assert [(f.id, f.name) for f in folders] == [("leads", "Leads")]
    sent = env.state.requests[-1]
    assert (sent.method, sent.path) == ("GET", "/api/v1/zapier/triggers/readable-folder")
    expected = "Basic " + base64.b64encode(b"me@example.com:nh-key-0123456789").decode()
    assert sent.header("authorization") == expected


async def test_search_by_phone_field(env: Env) -> None:
    records = await env.api.search_records(env.folder, f'"Phone":{PHONE}', limit=5)
    assert [r.id for r in records] == [env.record]
    record = records[0]
    assert record.first("Phone") == PHONE and record.fields["Name"] == "Іван Петренко"
    assert record.created_at and record.record_url
    sent = env.state.requests[-1]
    assert sent.path == f"/api/v1/zapier/searches/find-record/{env.folder}"
    assert sent.query == {"query": f'"Phone":{PHONE}', "limit": "5"}


async def test_search_plain_text_and_no_match(env: Env) -> None:
    assert len(await env.api.search_records(env.folder, "New", limit=10)) == 2
    assert await env.api.search_records(env.folder, '"Phone":+380000000000') == []


async def test_get_record(env: Env) -> None:
    record = await env.api.get_record(env.folder, env.record)
    assert isinstance(record, NetHuntRecord) and record.id == env.record
    assert env.state.requests[-1].query == {"recordId": env.record, "limit": "1"}
    assert await env.api.get_record(env.folder, "0" * 24) is None
    assert await env.api.get_record("no-such-folder", env.record) is None


async def test_create_record(env: Env) -> None:
    created = await env.api.create_record(env.folder, {"Name": "Олег", "Phone": ["+380501234567"]})
    assert env.state.records[created.id].fields == {"Name": "Олег", "Phone": ["+380501234567"]}
    sent = env.state.requests[-1]
    assert (sent.method, sent.path) == ("POST", f"/api/v1/zapier/actions/create-record/{env.folder}")
    assert sent.json == {"fields": {"Name": "Олег", "Phone": ["+380501234567"]}}
    await env.api.create_record(env.folder, {"Name": "X"}, time_zone="Europe/Kyiv")
    assert env.state.requests[-1].json == {"fields": {"Name": "X"}, "timeZone": "Europe/Kyiv"}


async def test_update_record_overwrite_is_a_query_flag(env: Env) -> None:
    updated = await env.api.update_record(env.record, {"Status": "Called"}, overwrite=True)
    assert updated.id == env.record and updated.fields["Status"] == "Called"
    sent = env.state.requests[-1]
    assert (sent.method, sent.path) == ("POST", f"/api/v1/zapier/actions/update-record/{env.record}")
    assert sent.query == {"overwrite": "true"}
    assert sent.json == {"fieldActions": {"Status": {"add": "Called"}}}


async def test_update_without_overwrite_adds(env: Env) -> None:
    updated = await env.api.update_record(env.record, {"Status": "Won", "Tags": "b", "Note": "hi"})
    assert env.state.requests[-1].query == {"overwrite": "false"}
    assert updated.fields["Status"] == "New"  # a filled single value is not replaced
    assert updated.fields["Tags"] == ["a", "b"] and updated.fields["Note"] == "hi"
    after = await env.api.apply_field_actions(env.record, {"Tags": {"remove": ["a"]}})
    assert after.fields["Tags"] == ["b"]


async def test_create_comment(env: Env) -> None:
    answer = await env.api.create_comment(env.record, "Дзвінок: клієнт зацікавлений")
    assert answer["recordId"] == env.record
    assert env.state.comments[-1]["text"] == "Дзвінок: клієнт зацікавлений"
    sent = env.state.requests[-1]
    assert sent.path == f"/api/v1/zapier/actions/create-comment/{env.record}"
    assert sent.json == {"text": "Дзвінок: клієнт зацікавлений"}


def tick_clock(state: NetHuntState, start: datetime) -> None:
    """Every timestamp the simulator stamps is one minute after the previous one."""
    moments = (start + timedelta(minutes=i) for i in range(10_000))
    state.clock = lambda: next(moments)


async def test_create_call_log(env: Env) -> None:
    kyiv = timezone(timedelta(hours=3))
    answer = await env.api.create_call_log(
        env.record,
        "AI: клієнт зацікавлений",
        time=datetime(2025, 3, 1, 13, 5, tzinfo=kyiv),
        duration_minutes=1.5,
    )
    assert answer["recordId"] == env.record and answer["callLogId"]
    sent = env.state.requests[-1]
    assert (sent.method, sent.path) == ("POST", f"/api/v1/zapier/actions/create-call-log/{env.record}")
    # Sent in UTC: what NetHunt stamps itself, and no offset for a query string or a reader to misread.
    assert sent.json == {
        "text": "AI: клієнт зацікавлений",
        "time": "2025-03-01T10:05:00.000Z",
        "duration": 1.5,
    }
    assert env.state.call_logs[-1]["time"] == "2025-03-01T10:05:00.000Z"
    await env.api.create_call_log(env.record, "Без часу")
    assert env.state.requests[-1].json == {"text": "Без часу"}
    assert env.state.call_logs[-1]["duration"] is None and env.state.call_logs[-1]["time"]
    await env.api.create_call_log(env.record, "x", time="2025-03-01T10:00:00+02:00", duration_minutes=0)
    assert env.state.requests[-1].json == {"text": "x", "time": "2025-03-01T10:00:00+02:00", "duration": 0}


async def test_create_call_log_errors(env: Env) -> None:
    with pytest.raises(NotFound) as caught:
        await env.api.create_call_log("f" * 24, "text")
    assert caught.value.details["path"] == f"/api/v1/zapier/actions/create-call-log/{'f' * 24}"
    with pytest.raises(UpstreamRejected, match="duration"):
        await env.api.create_call_log(env.record, "text", duration_minutes=-1)
    with pytest.raises(UpstreamRejected, match="time"):
        await env.api.create_call_log(env.record, "text", time="yesterday")
    assert env.state.call_logs == []


async def test_recent_comments_newest_first_since_and_limit(env: Env) -> None:
    other_folder = env.state.add_folder("Other", folder_id="other")
    stranger = env.state.add_record(other_folder, {"Name": "X"})
    tick_clock(env.state, datetime(2025, 3, 1, 10, 0, tzinfo=UTC))
    for text in ("перший", "другий", "третій"):  # stamped 10:00, 10:01, 10:02
        await env.api.create_comment(env.record, text)
    await env.api.create_comment(stranger, "чужий")

    comments = await env.api.recent_comments(env.folder)
    assert [c["text"] for c in comments] == ["третій", "другий", "перший"]
    assert set(comments[0]) == {"recordId", "commentId", "text", "createdAt"}
    sent = env.state.requests[-1]
    assert (sent.method, sent.path) == ("GET", f"/api/v1/zapier/triggers/new-comment/{env.folder}")
    assert sent.query == {"limit": "100"}

    since = datetime(2025, 3, 1, 10, 1, tzinfo=UTC)
    assert [c["text"] for c in await env.api.recent_comments(env.folder, since=since)] == ["третій", "другий"]
    assert env.state.requests[-1].query == {"since": "2025-03-01T10:01:00.000Z", "limit": "100"}
    assert [c["text"] for c in await env.api.recent_comments(env.folder, limit=1)] == ["третій"]
    naive = await env.api.recent_comments(env.folder, since=datetime(2025, 3, 1, 10, 2))  # naive is UTC
    assert [c["text"] for c in naive] == ["третій"]
    as_text = await env.api.recent_comments(env.folder, since="2025-03-01T12:01:30+02:00")
    assert [c["text"] for c in as_text] == ["третій"]
    assert await env.api.recent_comments(env.folder, since=datetime(2030, 1, 1, tzinfo=UTC)) == []


async def test_recent_call_logs(env: Env) -> None:
    tick_clock(env.state, datetime(2025, 3, 1, 10, 0, tzinfo=UTC))
    await env.api.create_call_log(env.record, "перший", duration_minutes=0.5)
    await env.api.create_call_log(env.record, "другий", duration_minutes=2)
    logs = await env.api.recent_call_logs(env.folder, since="2025-03-01T10:00:00Z", limit=5)
    assert [(log["text"], log["duration"]) for log in logs] == [("другий", 2), ("перший", 0.5)]
    assert logs[0]["recordId"] == env.record and logs[0]["callLogId"] and logs[0]["time"]
    sent = env.state.requests[-1]
    assert (sent.method, sent.path) == ("GET", f"/api/v1/zapier/triggers/new-call-log/{env.folder}")
    assert sent.query == {"since": "2025-03-01T10:00:00Z", "limit": "5"}


async def test_polling_unknown_folder_and_bad_limit(env: Env) -> None:
    with pytest.raises(NotFound):
        await env.api.recent_comments("no-such-folder")
    with pytest.raises(NotFound):
        await env.api.recent_call_logs("no-such-folder")
    with pytest.raises(UpstreamRejected, match="limit"):
        await env.api.recent_call_logs(env.folder, limit=0)


def test_iso_time() -> None:
    assert iso_time(datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)) == "2025-03-01T10:00:00.123Z"
    assert (
        iso_time(datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))))
        == "2025-03-01T10:00:00.000Z"
    )
    assert iso_time(datetime(2025, 3, 1, 10, 0)) == "2025-03-01T10:00:00.000Z"
    assert iso_time("2025-03-01") == "2025-03-01"


async def test_wrong_key_is_unauthorized_without_leaking_it(env: Env) -> None:
    api = NetHuntApi(env.http, BASE, env.state.email, "wrong-key-987654")
    with pytest.raises(Unauthorized) as caught:
        await api.list_folders()
    assert "wrong-key-987654" not in str(caught.value) and caught.value.details["status"] == 401
    with pytest.raises(Unauthorized):
        await api.auth_test()
    assert await env.api.auth_test()


async def test_not_found_and_server_errors(env: Env) -> None:
    with pytest.raises(NotFound):
        await env.api.update_record("f" * 24, {"Status": "x"})
    with pytest.raises(NotFound):
        await env.api.search_records("no-such-folder", "x")
    env.state.fail_next(500, times=2)
    for _ in range(2):
        with pytest.raises(UpstreamError) as caught:
            await env.api.search_records(env.folder, "New")
        assert caught.value.retryable
    assert len(await env.api.search_records(env.folder, "New", limit=10)) == 2
    assert len(env.state.requests_to("GET", "/api/v1/zapier/searches/")) == 4


async def test_timeout_is_upstream_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = NetHuntApi(http, BASE, "me@example.com", "nh-key-0123456789", timeout=0.5)
        with pytest.raises(
            UpstreamError, match="NetHunt timed out on GET /api/v1/zapier/triggers/readable-folder"
        ):
            await api.list_folders()
