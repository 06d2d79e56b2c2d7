"""The sofa handlers, run inline and durably against real PostgreSQL and the NetHunt simulator over real HTTP.

Each mode gets an `IntegrationTestEnv` of its own: a database of its own, so it runs beside every
other test of the session (`make test` runs it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from happ_integ import CallAnalysis, LookupResult
from happ_integ.testing import DEMO, IntegrationTestEnv
from integrations.sofa import integration
from integrations.sofa.config import CrmFields, StatusMap
from integrations.sofa.handlers.crm_postcall import duration_minutes
from integrations.sofa.models import PostcallResult

NETHUNT_SECRETS = ("NETHUNT_EMAIL", "NETHUNT_API_KEY", "NETHUNT_FOLDER_ID")
UNKNOWN_PHONE = "+380671234567"
SEARCHES = "/api/v1/zapier/searches/find-record/leads"


@pytest.fixture(scope="module", params=["inline", "durable"])
async def started(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[IntegrationTestEnv]:
    durable = request.param == "durable"
    async with IntegrationTestEnv.start(integration, database_url=pg_url, durable=durable) as env:
        yield env


@pytest.fixture
async def env(started: IntegrationTestEnv) -> IntegrationTestEnv:
    """The module's env as a test finds it: configs, secrets and the demo lead as they started."""
    await started.reset()
    started.sims.nethunt.comments.clear()
    started.sims.nethunt.call_logs.clear()
    started.sims.nethunt.records[DEMO.nethunt_record].fields["Status"] = "New"
    return started


async def lookup(env: IntegrationTestEnv, phone: str) -> LookupResult:
    return await env.run("crm-lookup", {"call_id": "c_1", "phone_number": phone}, LookupResult)


async def postcall(env: IntegrationTestEnv, **values: Any) -> PostcallResult:
    payload = {"call_id": "c_1", "phone_number": DEMO.phone, "attempt": 1, **values}
    return await env.run("crm-postcall", payload, PostcallResult)


def record(env: IntegrationTestEnv) -> dict[str, Any]:
    return env.sims.nethunt.records[DEMO.nethunt_record].fields


def comments(env: IntegrationTestEnv) -> list[dict[str, Any]]:
    return [c for c in env.sims.nethunt.comments if c["recordId"] == DEMO.nethunt_record]


def call_logs(env: IntegrationTestEnv) -> list[dict[str, Any]]:
    return [c for c in env.sims.nethunt.call_logs if c["recordId"] == DEMO.nethunt_record]


def logged_by_handler(env: IntegrationTestEnv) -> str:
    """Everything the handler's own code and steps logged (the run's start event shows the payload)."""
    return " ".join(repr(e) for e in env.log.events if e.event != "handler:start")


async def test_lookup_finds_the_demo_lead(env: IntegrationTestEnv) -> None:
    result = await lookup(env, DEMO.phone)
    assert result == LookupResult(
        found=True,
        record_id=DEMO.nethunt_record,
        variables={"client_name": "Іван Петренко", "company": "ТОВ Компанія", "lead_source": "Facebook"},
    )
    [search] = env.sims.nethunt.requests_to("GET", SEARCHES)[-1:]
    assert search.query == {"query": f'"Phone":{DEMO.phone}', "limit": "1"}
    assert DEMO.phone not in logged_by_handler(env)
    assert "+38099*****73" in logged_by_handler(env)


async def test_lookup_takes_a_list_s_first_item_and_leaves_out_empty_fields(env: IntegrationTestEnv) -> None:
    phone = "+380631112233"
    record_id = env.sims.nethunt.add_record(
        "leads", {"Name": ["Олена", "Lena"], "Phone": [phone], "Company": "", "Source": ["Instagram"]}
    )
    try:
        result = await lookup(env, phone)
    finally:
        del env.sims.nethunt.records[record_id]
    assert result.found and result.record_id == record_id
    assert result.variables == {"client_name": "Олена", "lead_source": "Instagram"}


async def test_lookup_reads_the_leads_time_zone_from_the_field_the_config_names(
    env: IntegrationTestEnv,
) -> None:
    phone, other = "+380631112244", "+380631112255"
    here = env.sims.nethunt.add_record(
        "leads", {"Name": "Марта", "Phone": [phone], "Часовий пояс": "Europe/Warsaw"}
    )
    bad = env.sims.nethunt.add_record("leads", {"Name": "Ян", "Phone": [other], "Часовий пояс": "Warsaw"})
    try:
        assert "timezone" not in (await lookup(env, phone)).variables  # no field named: none read
        await env.set_config("crm_fields", {"timezone": "Часовий пояс"})
        assert (await lookup(env, phone)).variables["timezone"] == "Europe/Warsaw"
        assert "timezone" not in (await lookup(env, other)).variables  # not a zone: left out
    finally:
        await env.set_config("crm_fields", {})
        del env.sims.nethunt.records[here], env.sims.nethunt.records[bad]


async def test_lookup_of_an_unknown_number_finds_nothing(env: IntegrationTestEnv) -> None:
    result = await lookup(env, UNKNOWN_PHONE)
    assert result == LookupResult(found=False, note="no CRM record for this number")
    assert env.log.named("No CRM record for this number")
    assert UNKNOWN_PHONE not in logged_by_handler(env)


async def test_lookup_without_credentials_asks_nobody(env: IntegrationTestEnv) -> None:
    assert await env.secret("NETHUNT_API_KEY") == env.sims.nethunt.api_key
    await env.set_secrets(NETHUNT_API_KEY="")
    asked = len(env.sims.nethunt.requests)
    result = await lookup(env, DEMO.phone)
    assert result == LookupResult(found=False, note="NetHunt credentials are not configured")
    assert len(env.sims.nethunt.requests) == asked


async def test_postcall_writes_status_call_log_and_comment_to_the_record(env: IntegrationTestEnv) -> None:
    ended = datetime(2025, 3, 1, 10, 2, 1, tzinfo=UTC)
    searches = len(env.sims.nethunt.requests_to("GET", SEARCHES))
    result = await postcall(
        env,
        record_id=DEMO.nethunt_record,
        ended_at=ended.isoformat(),
        duration_seconds=61,
        call_successful="success",
        transcript_summary="Wants a corner couch, call back on Monday.",
    )
    assert result == PostcallResult(
        success=True,
        record_id=DEMO.nethunt_record,
        status="Interested",
        written=["status", "call_log", "comment"],
        note=None,
    )
    assert record(env)["Status"] == "Interested"
    [log] = call_logs(env)
    assert log["duration"] == 2  # 61 s, rounded up
    assert log["time"] == "2025-03-01T10:02:01.000Z"
    assert log["text"] == "Outbound call, attempt 1: Wants a corner couch, call back on Monday."
    [comment] = comments(env)
    assert "Wants a corner couch, call back on Monday." in comment["text"]
    assert "success" in comment["text"] and "Interested" in comment["text"]
    # The lookup's record id is used as it is: no second search.
    assert len(env.sims.nethunt.requests_to("GET", SEARCHES)) == searches


async def test_postcall_maps_failure_and_a_missing_outcome(env: IntegrationTestEnv) -> None:
    result = await postcall(
        env, record_id=DEMO.nethunt_record, duration_seconds=10, call_successful="failure"
    )
    assert result.status == "Not interested"
    assert record(env)["Status"] == "Not interested"
    assert [log["duration"] for log in call_logs(env)] == [1]

    result = await postcall(env, record_id=DEMO.nethunt_record, duration_seconds=120, attempt=2)
    assert result.status == "Called"
    assert record(env)["Status"] == "Called"
    assert [log["duration"] for log in call_logs(env)] == [1, 2]
    assert len(comments(env)) == 2


async def test_postcall_without_a_record_writes_nothing(env: IntegrationTestEnv) -> None:
    asked = len(env.sims.nethunt.requests)
    result = await postcall(env, duration_seconds=30, call_successful="success")
    assert result == PostcallResult(success=True, record_id=None, status=None, written=[], note=result.note)
    assert result.note == "no CRM record: nothing written"
    assert len(env.sims.nethunt.requests) == asked
    assert env.sims.nethunt.comments == [] and env.sims.nethunt.call_logs == []
    assert env.log.named("No CRM record for this call: nothing written")


async def test_a_partial_config_changes_the_status_field_written(env: IntegrationTestEnv) -> None:
    stored = await env.set_config("crm_fields", {"status": "Стан"})
    assert stored == {**CrmFields().model_dump(), "status": "Стан"}
    await env.set_config("status_map", {"success": "Гарячий"})
    result = await postcall(env, record_id=DEMO.nethunt_record, duration_seconds=5, call_successful="yes")
    assert result.status == "Гарячий"
    assert record(env)["Стан"] == "Гарячий" and record(env)["Status"] == "New"


@pytest.mark.parametrize(
    ("call_successful", "status"),
    [
        ("success", "Interested"),
        ("yes", "Interested"),
        ("True", "Interested"),
        ("failure", "Not interested"),
        ("no", "Not interested"),
        ("false", "Not interested"),
        ("unknown", "Called"),
        ("maybe", "Called"),
        ("", "Called"),
        (None, "Called"),
    ],
)
def test_status_map_value_for(call_successful: str | None, status: str) -> None:
    assert StatusMap().value_for(call_successful) == status


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        ("interested", "Interested"),
        ("not_interested", "Not interested"),
        ("callback", "Call back"),
        ("wrong_number", "Wrong number"),
        ("voicemail", "Voicemail"),
        ("no_conversation", "Called"),
    ],
)
def test_status_map_is_keyed_by_the_analysis_outcome(outcome: str, status: str) -> None:
    assert StatusMap().value_for(outcome, "failure") == status  # the outcome wins over call_successful
    assert StatusMap.model_validate({outcome: "Мій статус"}).value_for(outcome) == "Мій статус"


async def test_postcall_uses_the_analysis_outcome_summary_and_next_action(env: IntegrationTestEnv) -> None:
    analysis = CallAnalysis(
        outcome="callback", summary="Просить передзвонити в понеділок.", next_action="Передзвонити о 10:00"
    )
    result = await postcall(
        env,
        record_id=DEMO.nethunt_record,
        duration_seconds=40,
        call_successful="success",
        transcript_summary="ElevenLabs' own summary",
        analysis=analysis.model_dump(mode="json"),
    )
    assert result.status == "Call back"
    assert record(env)["Status"] == "Call back"
    [comment] = comments(env)
    assert (
        "Просить передзвонити в понеділок." in comment["text"] and "Передзвонити о 10:00" in comment["text"]
    )
    assert "ElevenLabs' own summary" not in comment["text"]


async def test_the_gateway_routes_take_the_env_s_tokens(env: IntegrationTestEnv) -> None:
    # crm-lookup and crm-postcall run inside a call, so they have no route of their own; the call
    # webhooks take WEBHOOK_TOKEN (no SENDER_TOKEN is set), the built-ins the admin token.
    event = {"eventType": "call_start", "callId": "provider-call-1"}
    assert (await env.http.post("webhook/call-events", json=event)).status_code == 401
    unknown = await env.http.post("webhook/call-events", json=event, headers=env.headers)
    assert unknown.status_code == 404, unknown.text
    assert (await env.http.get("config/status_map", headers=env.headers)).status_code == 401
    answer = await env.http.get("config/status_map", headers=env.admin_headers)
    assert answer.status_code == 200 and answer.json()["value"] == StatusMap().model_dump()


def test_config_defaults() -> None:
    assert set(CrmFields.model_fields) == {"phone", "name", "company", "source", "status", "timezone"}
    assert CrmFields().status == "Status"
    assert set(integration.default_configs) == {
        "crm_fields",
        "status_map",
        "call_handling",
        "retention",
        "contact_policy",
    }
    assert integration.secrets == NETHUNT_SECRETS


@pytest.mark.parametrize(("seconds", "minutes"), [(0, 0), (0.4, 1), (60, 1), (60.5, 2), (125, 3)])
def test_duration_is_rounded_up_to_minutes(seconds: float, minutes: int) -> None:
    assert duration_minutes(seconds) == minutes
