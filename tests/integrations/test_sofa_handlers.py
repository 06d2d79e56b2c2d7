"""The sofa handlers, run inline against real PostgreSQL and the NetHunt simulator over real HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet

from happ_integ.calls.models import CallAnalysis, LookupPayload, LookupResult, PostcallPayload
from happ_integ.embedded.process import free_port
from happ_integ.inline import run_inline
from happ_integ.logs import CaptureSink
from happ_integ.ops import Resources
from happ_integ.runtime import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.setup import prepare_integration
from integrations.sofa import integration
from integrations.sofa.config import CrmFields, StatusMap
from integrations.sofa.handlers.crm_postcall import duration_minutes
from integrations.sofa.models import PostcallResult
from simulator.app import DEMO_PHONE, SimulatorStates, create_simulator_app
from simulator.nethunt import NetHuntState
from tests.e2e.conftest import serve

NETHUNT_SECRETS = ("NETHUNT_EMAIL", "NETHUNT_API_KEY", "NETHUNT_FOLDER_ID")
UNKNOWN_PHONE = "+380671234567"


@dataclasses.dataclass
class Sofa:
    resources: Resources
    nethunt: NetHuntState
    sink: CaptureSink
    record_id: str

    async def lookup(self, phone: str) -> LookupResult:
        result = await run_inline(
            self.resources,
            "sofa",
            integration.handler("crm-lookup"),
            LookupPayload(call_id="c_1", phone_number=phone),
            "t-lookup",
            self.sink,
        )
        assert isinstance(result, LookupResult)
        return result

    async def postcall(self, **values: Any) -> PostcallResult:
        payload = PostcallPayload.model_validate(
            {"call_id": "c_1", "phone_number": DEMO_PHONE, "attempt": 1, **values}
        )
        result = await run_inline(
            self.resources, "sofa", integration.handler("crm-postcall"), payload, "t-postcall", self.sink
        )
        assert isinstance(result, PostcallResult)
        return result

    def comments(self) -> list[dict[str, Any]]:
        return [c for c in self.nethunt.comments if c["recordId"] == self.record_id]

    def call_logs(self) -> list[dict[str, Any]]:
        return [c for c in self.nethunt.call_logs if c["recordId"] == self.record_id]


@pytest.fixture(scope="module")
async def sofa(pg_url: str) -> AsyncIterator[Sofa]:
    states = SimulatorStates.demo()
    [record_id] = [r.id for r in states.nethunt.records.values() if DEMO_PHONE in r.fields["Phone"]]
    port = free_port()
    server, task = await serve(create_simulator_app(states), port)
    # By their environment names, as a deployment sets them.
    env: dict[str, Any] = {
        "DATABASE_URL": pg_url,
        "HAPP_SECRET_KEY": Fernet.generate_key().decode(),
        "HAPP_NETHUNT_API_URL": f"http://127.0.0.1:{port}/nethunt/api/v1/zapier",
    }
    settings = Settings(**env)
    resources = await open_resources(settings, {"sofa": integration})
    await prepare_integration(resources, integration)
    creds, config = resources.creds("sofa"), resources.config("sofa")
    # Other tests of the session use "sofa" too, with secrets sealed by another HAPP_SECRET_KEY:
    # keep their ciphertexts and configs as they are, and put them back afterwards.
    pool = resources.pool
    secrets_before = await pool.fetch(
        "SELECT name, ciphertext FROM happ_secrets WHERE integration = 'sofa' AND name = ANY($1)",
        list(NETHUNT_SECRETS),
    )
    configs_before = {key: await config.get_raw(key) for key in ("crm_fields", "status_map")}
    credentials = states.credentials()
    await creds.set_many({name: credentials[name] for name in NETHUNT_SECRETS})
    yield Sofa(resources, states.nethunt, CaptureSink(), record_id)
    sealed = {row["name"]: row["ciphertext"] for row in secrets_before}
    for name in NETHUNT_SECRETS:
        await pool.execute(
            "UPDATE happ_secrets SET ciphertext = $2 WHERE integration = 'sofa' AND name = $1",
            name,
            sealed.get(name),
        )
    for key, value in configs_before.items():
        if value is not None:
            await config.set(key, value)
    await close_resources(resources)
    server.should_exit = True
    await task


@pytest.fixture(autouse=True)
def fresh(sofa: Sofa) -> None:
    sofa.nethunt.comments.clear()
    sofa.nethunt.call_logs.clear()
    sofa.nethunt.records[sofa.record_id].fields["Status"] = "New"
    sofa.sink.clear()


def logged_by_handler(sink: CaptureSink) -> str:
    """Everything the handler's own code and steps logged (the run's start event shows the payload)."""
    return " ".join(repr(e) for e in sink.events if e.event != "handler:start")


async def test_lookup_finds_the_demo_lead(sofa: Sofa) -> None:
    result = await sofa.lookup(DEMO_PHONE)
    assert result == LookupResult(
        found=True,
        record_id=sofa.record_id,
        variables={"client_name": "Іван Петренко", "company": "ТОВ Компанія", "lead_source": "Facebook"},
    )
    [search] = sofa.nethunt.requests_to("GET", "/api/v1/zapier/searches/find-record/leads")[-1:]
    assert search.query == {"query": f'"Phone":{DEMO_PHONE}', "limit": "1"}
    assert DEMO_PHONE not in logged_by_handler(sofa.sink)
    assert "+38099*****73" in logged_by_handler(sofa.sink)


async def test_lookup_takes_a_list_s_first_item_and_leaves_out_empty_fields(sofa: Sofa) -> None:
    phone = "+380631112233"
    record_id = sofa.nethunt.add_record(
        "leads", {"Name": ["Олена", "Lena"], "Phone": [phone], "Company": "", "Source": ["Instagram"]}
    )
    try:
        result = await sofa.lookup(phone)
    finally:
        del sofa.nethunt.records[record_id]
    assert result.found and result.record_id == record_id
    assert result.variables == {"client_name": "Олена", "lead_source": "Instagram"}


async def test_lookup_of_an_unknown_number_finds_nothing(sofa: Sofa) -> None:
    result = await sofa.lookup(UNKNOWN_PHONE)
    assert result == LookupResult(found=False, note="no CRM record for this number")
    assert sofa.sink.named("No CRM record for this number")
    assert UNKNOWN_PHONE not in logged_by_handler(sofa.sink)


async def test_lookup_without_credentials_asks_nobody(sofa: Sofa) -> None:
    creds = sofa.resources.creds("sofa")
    key = await creds.reveal("NETHUNT_API_KEY")
    assert key is not None
    await creds.set_many({"NETHUNT_API_KEY": ""})
    asked = len(sofa.nethunt.requests)
    try:
        result = await sofa.lookup(DEMO_PHONE)
    finally:
        await creds.set_many({"NETHUNT_API_KEY": key})
    assert result == LookupResult(found=False, note="NetHunt credentials are not configured")
    assert len(sofa.nethunt.requests) == asked


async def test_postcall_writes_status_call_log_and_comment_to_the_record(sofa: Sofa) -> None:
    ended = datetime(2025, 3, 1, 10, 2, 1, tzinfo=UTC)
    searches = len(sofa.nethunt.requests_to("GET", "/api/v1/zapier/searches/find-record/leads"))
    result = await sofa.postcall(
        record_id=sofa.record_id,
        ended_at=ended.isoformat(),
        duration_seconds=61,
        call_successful="success",
        transcript_summary="Wants a corner sofa, call back on Monday.",
    )
    assert result == PostcallResult(
        success=True,
        record_id=sofa.record_id,
        status="Interested",
        written=["status", "call_log", "comment"],
        note=None,
    )
    assert sofa.nethunt.records[sofa.record_id].fields["Status"] == "Interested"
    [log] = sofa.call_logs()
    assert log["duration"] == 2  # 61 s, rounded up
    assert log["time"] == "2025-03-01T10:02:01.000Z"
    assert log["text"] == "Outbound call, attempt 1: Wants a corner sofa, call back on Monday."
    [comment] = sofa.comments()
    assert "Wants a corner sofa, call back on Monday." in comment["text"]
    assert "success" in comment["text"] and "Interested" in comment["text"]
    # The lookup's record id is used as it is: no second search.
    assert len(sofa.nethunt.requests_to("GET", "/api/v1/zapier/searches/find-record/leads")) == searches


async def test_postcall_maps_failure_and_a_missing_outcome(sofa: Sofa) -> None:
    result = await sofa.postcall(record_id=sofa.record_id, duration_seconds=10, call_successful="failure")
    assert result.status == "Not interested"
    assert sofa.nethunt.records[sofa.record_id].fields["Status"] == "Not interested"
    assert [log["duration"] for log in sofa.call_logs()] == [1]

    result = await sofa.postcall(record_id=sofa.record_id, duration_seconds=120, attempt=2)
    assert result.status == "Called"
    assert sofa.nethunt.records[sofa.record_id].fields["Status"] == "Called"
    assert [log["duration"] for log in sofa.call_logs()] == [1, 2]
    assert len(sofa.comments()) == 2


async def test_postcall_without_a_record_writes_nothing(sofa: Sofa) -> None:
    asked = len(sofa.nethunt.requests)
    result = await sofa.postcall(duration_seconds=30, call_successful="success")
    assert result == PostcallResult(success=True, record_id=None, status=None, written=[], note=result.note)
    assert result.note == "no CRM record: nothing written"
    assert len(sofa.nethunt.requests) == asked
    assert sofa.nethunt.comments == [] and sofa.nethunt.call_logs == []
    assert sofa.sink.named("No CRM record for this call: nothing written")


async def test_a_partial_config_changes_the_status_field_written(sofa: Sofa) -> None:
    config = sofa.resources.config("sofa")
    stored = await config.set("crm_fields", {"status": "Стан"})
    assert stored == {**CrmFields().model_dump(), "status": "Стан"}
    await config.set("status_map", {"success": "Гарячий"})
    try:
        result = await sofa.postcall(record_id=sofa.record_id, duration_seconds=5, call_successful="yes")
    finally:
        await config.set("crm_fields", CrmFields())
        await config.set("status_map", StatusMap())
    assert result.status == "Гарячий"
    fields = sofa.nethunt.records[sofa.record_id].fields
    assert fields["Стан"] == "Гарячий" and fields["Status"] == "New"


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


async def test_postcall_uses_the_analysis_outcome_summary_and_next_action(sofa: Sofa) -> None:
    analysis = CallAnalysis(
        outcome="callback", summary="Просить передзвонити в понеділок.", next_action="Передзвонити о 10:00"
    )
    result = await sofa.postcall(
        record_id=sofa.record_id,
        duration_seconds=40,
        call_successful="success",
        transcript_summary="ElevenLabs' own summary",
        analysis=analysis.model_dump(mode="json"),
    )
    assert result.status == "Call back"
    assert sofa.nethunt.records[sofa.record_id].fields["Status"] == "Call back"
    [comment] = sofa.comments()
    assert (
        "Просить передзвонити в понеділок." in comment["text"] and "Передзвонити о 10:00" in comment["text"]
    )
    assert "ElevenLabs' own summary" not in comment["text"]


def test_config_defaults() -> None:
    assert set(CrmFields.model_fields) == {"phone", "name", "company", "source", "status"}
    assert CrmFields().status == "Status"
    assert set(integration.default_configs) == {"crm_fields", "status_map", "call_handling", "retention"}
    assert integration.secrets == NETHUNT_SECRETS


@pytest.mark.parametrize(("seconds", "minutes"), [(0, 0), (0.4, 1), (60, 1), (60.5, 2), (125, 3)])
def test_duration_is_rounded_up_to_minutes(seconds: float, minutes: int) -> None:
    assert duration_minutes(seconds) == minutes
