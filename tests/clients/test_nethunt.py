"""NetHuntApi against the NetHunt simulator: real paths, Basic auth, payloads and error mapping."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from happ_integ.clients.nethunt import NetHuntApi, NetHuntRecord
from happ_integ.errors import NotFound, Unauthorized, UpstreamError
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
