"""The keycrm handlers, run inline against real PostgreSQL and the KeyCRM simulator over real HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.fernet import Fernet

from happ_integ.calls.models import OUTCOMES, CallAnalysis, LookupPayload, LookupResult, PostcallPayload
from happ_integ.embedded.process import free_port
from happ_integ.inline import run_inline
from happ_integ.logs import CaptureSink
from happ_integ.ops import Resources
from happ_integ.runtime import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.setup import prepare_integration
from integrations.keycrm import integration
from integrations.keycrm.config import KeyCrmSettings, StatusMap
from integrations.keycrm.handlers.crm_postcall import summary_text, with_note
from integrations.keycrm.migrations import MIGRATIONS
from integrations.keycrm.models import PostcallResult
from simulator.keycrm import DEMO_PHONE, KeyCrmState, create_keycrm_app, seed_demo
from tests.e2e.conftest import serve

SECRETS = ("KEYCRM_API_KEY",)
CONFIGS = ("keycrm", "status_map")
UNKNOWN_PHONE = "+380671234567"
# Quick tests: far above KeyCRM's 60 a minute (tests/stores/test_pacing.py checks the pacing itself).
FAST = {"requests_per_minute": 6000}


@dataclasses.dataclass
class KeyCrm:
    resources: Resources
    state: KeyCrmState
    sink: CaptureSink
    ids: dict[str, int]
    card_field: str
    buyer_field: str

    @property
    def card(self) -> dict[str, Any]:
        return self.state.cards[self.ids["card"]]

    async def lookup(self, phone: str) -> LookupResult:
        result = await run_inline(
            self.resources,
            "keycrm",
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
            self.resources, "keycrm", integration.handler("crm-postcall"), payload, "t-postcall", self.sink
        )
        assert isinstance(result, PostcallResult)
        return result

    async def configure(self, key: str, value: dict[str, Any]) -> None:
        await self.resources.config("keycrm").set(key, value)

    def puts(self) -> list[Any]:
        return self.state.requests_to("PUT", "/v1/pipelines/cards/")


@pytest.fixture(scope="module")
async def keycrm(pg_url: str) -> AsyncIterator[KeyCrm]:
    state = KeyCrmState(api_key="sim-keycrm-handlers")
    ids = seed_demo(state)
    card_field = state.add_custom_field("lead", "Last call summary", "textarea")
    buyer_field = state.add_custom_field("client", "City")
    port = free_port()
    server, task = await serve(create_keycrm_app(state), port)
    # By their environment names, as a deployment sets them.
    env: dict[str, Any] = {
        "DATABASE_URL": pg_url,
        "HAPP_SECRET_KEY": Fernet.generate_key().decode(),
        "HAPP_KEYCRM_API_URL": f"http://127.0.0.1:{port}/v1",
    }
    resources = await open_resources(Settings(**env), {"keycrm": integration})
    await prepare_integration(resources, integration)
    creds, config = resources.creds("keycrm"), resources.config("keycrm")
    # Other tests of the session may use "keycrm" too, with secrets sealed by another
    # HAPP_SECRET_KEY: keep their ciphertexts and configs as they are, and put them back afterwards.
    pool = resources.pool
    secrets_before = await pool.fetch(
        "SELECT name, ciphertext FROM happ_secrets WHERE integration = 'keycrm' AND name = ANY($1)",
        list(SECRETS),
    )
    configs_before = {key: await config.get_raw(key) for key in CONFIGS}
    await creds.set_many({"KEYCRM_API_KEY": state.api_key})
    yield KeyCrm(resources, state, CaptureSink(), ids, card_field, buyer_field)
    sealed = {row["name"]: row["ciphertext"] for row in secrets_before}
    for name in SECRETS:
        await pool.execute(
            "UPDATE happ_secrets SET ciphertext = $2 WHERE integration = 'keycrm' AND name = $1",
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
async def fresh(keycrm: KeyCrm) -> AsyncIterator[None]:
    await keycrm.configure("keycrm", {**KeyCrmSettings().model_dump(), **FAST})
    await keycrm.configure("status_map", StatusMap().model_dump())
    keycrm.card.update(status_id=keycrm.ids["new"], pipeline_id=keycrm.ids["pipeline"], note=None)
    keycrm.card["custom_fields"] = {}
    keycrm.state.buyers[keycrm.ids["buyer"]]["custom_fields"] = {}
    keycrm.state.clear_requests()
    keycrm.sink.clear()
    yield


def logged_by_handler(sink: CaptureSink) -> str:
    """Everything the handler's own code and steps logged (the run's start event shows the payload)."""
    return " ".join(repr(e) for e in sink.events if e.event != "handler:start")


def analysis(outcome: str, summary: str = "", next_action: str | None = None) -> dict[str, Any]:
    return CallAnalysis.model_validate(
        {"outcome": outcome, "summary": summary, "next_action": next_action}
    ).model_dump(mode="json")


# crm-lookup --------------------------------------------------------------------------------------


async def test_lookup_finds_the_demo_buyer_and_its_open_card(keycrm: KeyCrm) -> None:
    result = await keycrm.lookup(DEMO_PHONE)
    assert result == LookupResult(
        found=True,
        record_id=str(keycrm.ids["card"]),
        variables={"client_name": "Іван Петренко", "company": "ТОВ Компанія", "manager": "Олена Коваль"},
    )
    [search] = keycrm.state.requests_to("GET", "/v1/buyer")
    assert search.query["filter[buyer_phone]"] == "380994829573"
    assert set(search.query["include"].split(",")) >= {"company", "manager", "custom_fields"}
    # Cards cannot be filtered by phone: they are read by the buyer's id, never asked for by phone.
    [cards] = keycrm.state.requests_to("GET", "/v1/pipelines/cards")
    assert "380994829573" not in str(cards.query)
    assert DEMO_PHONE not in logged_by_handler(keycrm.sink)
    assert "+38099*****73" in logged_by_handler(keycrm.sink)


async def test_lookup_reads_the_configured_custom_fields_from_the_card_and_the_buyer(keycrm: KeyCrm) -> None:
    await keycrm.configure(
        "keycrm",
        {
            **FAST,
            "custom_fields": {"city": keycrm.buyer_field, "last_call": keycrm.card_field, "none": "LD_9"},
        },
    )
    keycrm.state.buyers[keycrm.ids["buyer"]]["custom_fields"][keycrm.buyer_field] = "Львів"
    keycrm.card["custom_fields"][keycrm.card_field] = ["Дивани", "Крісла"]
    result = await keycrm.lookup(DEMO_PHONE)
    assert result.record_id == str(keycrm.ids["card"])
    assert result.variables == {
        "client_name": "Іван Петренко",
        "company": "ТОВ Компанія",
        "manager": "Олена Коваль",
        "city": "Львів",
        "last_call": "Дивани, Крісла",
    }


async def test_lookup_takes_only_an_open_card_of_the_configured_pipeline(keycrm: KeyCrm) -> None:
    _, (elsewhere,) = keycrm.state.add_pipeline("Retention", ["Call back"])
    other = keycrm.state.add_card(
        elsewhere, {"full_name": "Іван Петренко", "phone": DEMO_PHONE, "client_id": keycrm.ids["buyer"]}
    )
    try:
        await keycrm.configure("keycrm", {**FAST, "pipeline_id": keycrm.ids["pipeline"]})
        assert (await keycrm.lookup(DEMO_PHONE)).record_id == str(keycrm.ids["card"])
        assert keycrm.state.requests_to("GET", "/v1/pipelines/cards")[-1].query["filter[pipeline_id]"] == str(
            keycrm.ids["pipeline"]
        )
        # A card in a final status ("Not interested") is closed: nothing to call it about.
        keycrm.card["status_id"] = keycrm.ids["not_interested"]
        result = await keycrm.lookup(DEMO_PHONE)
        assert result == LookupResult(
            found=True,
            record_id=None,
            variables={"client_name": "Іван Петренко", "company": "ТОВ Компанія", "manager": "Олена Коваль"},
            note="the buyer has no open card: nothing to update",
        )
        assert keycrm.sink.named("KeyCRM buyer has no open card")
        # Any pipeline: the open card of the other one.
        await keycrm.configure("keycrm", {**FAST, "pipeline_id": None})
        assert (await keycrm.lookup(DEMO_PHONE)).record_id == str(other)
    finally:
        del keycrm.state.cards[other]


async def test_lookup_of_an_unknown_number_finds_nothing(keycrm: KeyCrm) -> None:
    result = await keycrm.lookup(UNKNOWN_PHONE)
    assert result == LookupResult(found=False, note="no KeyCRM buyer for this number")
    assert keycrm.sink.named("No KeyCRM buyer for this number")
    assert keycrm.state.requests_to("GET", "/v1/pipelines/cards") == []
    assert UNKNOWN_PHONE not in logged_by_handler(keycrm.sink)


async def test_lookup_without_credentials_asks_nobody(keycrm: KeyCrm) -> None:
    creds = keycrm.resources.creds("keycrm")
    await creds.set_many({"KEYCRM_API_KEY": ""})
    try:
        result = await keycrm.lookup(DEMO_PHONE)
    finally:
        await creds.set_many({"KEYCRM_API_KEY": keycrm.state.api_key})
    assert result == LookupResult(found=False, note="KeyCRM credentials are not configured")
    assert keycrm.state.requests == []


# crm-postcall ------------------------------------------------------------------------------------


async def test_postcall_moves_the_card_and_writes_the_note_once(keycrm: KeyCrm) -> None:
    record_id = str(keycrm.ids["card"])
    result = await keycrm.postcall(
        record_id=record_id,
        duration_seconds=61,
        call_successful="success",
        transcript_summary="ElevenLabs' own summary",
        analysis=analysis("callback", "Просить передзвонити завтра о 10.", "Передзвонити завтра"),
    )
    assert result == PostcallResult(
        success=True,
        record_id=record_id,
        status_id=keycrm.ids["callback"],
        outcome="callback",
        written=["status", "summary"],
    )
    assert keycrm.card["status_id"] == keycrm.ids["callback"]
    assert keycrm.card["note"] == (
        "AI call, attempt 1: callback\nПросить передзвонити завтра о 10.\nNext: Передзвонити завтра"
    )
    # One write, carrying both: the status and the note.
    [put] = keycrm.puts()
    assert put.json == {"status_id": keycrm.ids["callback"], "note": keycrm.card["note"]}
    # The lookup's card id is used as it is: no second search.
    assert keycrm.state.requests_to("GET", "/v1/buyer") == []
    assert [r.path for r in keycrm.state.requests_to("GET")] == [f"/v1/pipelines/cards/{record_id}"]


async def test_postcall_adds_the_summary_after_the_card_s_note(keycrm: KeyCrm) -> None:
    keycrm.card["note"] = "Менеджер: клієнт з виставки"
    await keycrm.postcall(
        record_id=str(keycrm.ids["card"]), attempt=2, analysis=analysis("interested", "Хоче кутовий диван.")
    )
    assert (
        keycrm.card["note"]
        == "Менеджер: клієнт з виставки\n\nAI call, attempt 2: interested\nХоче кутовий диван."
    )
    assert keycrm.card["status_id"] == keycrm.ids["interested"]
    assert len(keycrm.puts()) == 1


async def test_postcall_writes_the_summary_into_the_configured_custom_field(keycrm: KeyCrm) -> None:
    keycrm.card["note"] = "untouched"
    await keycrm.configure("keycrm", {**FAST, "note_field": keycrm.card_field})
    result = await keycrm.postcall(
        record_id=str(keycrm.ids["card"]), analysis=analysis("not_interested", "Вже купив.")
    )
    assert result.written == ["status", "summary"] and result.status_id == keycrm.ids["not_interested"]
    [put] = keycrm.puts()
    text = "AI call, attempt 1: not_interested\nВже купив."
    assert put.json == {
        "status_id": keycrm.ids["not_interested"],
        "custom_fields": [{"uuid": keycrm.card_field, "value": text}],
    }
    assert keycrm.card["custom_fields"] == {keycrm.card_field: text}
    assert keycrm.card["note"] == "untouched"
    # No read of the card first: a custom field is overwritten, not added to.
    assert keycrm.state.requests_to("GET") == []


async def test_postcall_without_analysis_maps_elevenlabs_verdict_and_summary(keycrm: KeyCrm) -> None:
    result = await keycrm.postcall(
        record_id=str(keycrm.ids["card"]), call_successful="failure", transcript_summary="Не цікаво."
    )
    assert (result.status_id, result.outcome) == (keycrm.ids["not_interested"], "failure")
    assert keycrm.card["note"] == "AI call, attempt 1: failure\nНе цікаво."
    assert keycrm.card["status_id"] == keycrm.ids["not_interested"]


async def test_postcall_with_no_status_for_the_outcome_writes_only_the_summary(keycrm: KeyCrm) -> None:
    await keycrm.configure("status_map", {"voicemail": None})
    result = await keycrm.postcall(
        record_id=str(keycrm.ids["card"]), analysis=analysis("voicemail", "Автовідповідач.")
    )
    assert (result.status_id, result.written) == (None, ["summary"])
    [put] = keycrm.puts()
    assert "status_id" not in put.json
    assert keycrm.card["status_id"] == keycrm.ids["new"]
    # Neither a status nor a summary: nothing is written at all.
    keycrm.state.clear_requests()
    nothing = await keycrm.postcall(record_id=str(keycrm.ids["card"]), call_successful="unknown")
    assert nothing.written == [] and nothing.success
    assert keycrm.state.requests == []


async def test_postcall_without_a_record_writes_nothing(keycrm: KeyCrm) -> None:
    result = await keycrm.postcall(
        duration_seconds=30, call_successful="success", analysis=analysis("interested")
    )
    assert result == PostcallResult(success=True, note="no KeyCRM card: nothing written")
    assert keycrm.state.requests == []
    assert keycrm.card["status_id"] == keycrm.ids["new"] and keycrm.card["note"] is None
    assert keycrm.sink.named("No KeyCRM card for this call: nothing written")


# config ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "call_successful", "status"),
    [
        ("interested", None, "interested"),
        ("not_interested", "success", "not_interested"),  # the analysis wins over ElevenLabs' verdict
        ("callback", None, "callback"),
        ("wrong_number", None, "wrong_number"),
        ("voicemail", None, "voicemail"),
        ("no_conversation", "failure", "no_conversation"),
        (None, "success", "interested"),
        (None, "yes", "interested"),
        (None, "True", "interested"),
        (None, "failure", "not_interested"),
        (None, "no", "not_interested"),
        (None, "unknown", None),
        (None, None, None),
        ("", "", None),
        ("something_else", "success", None),
    ],
)
def test_status_map_value_for(outcome: str | None, call_successful: str | None, status: str | None) -> None:
    ids = seed_demo(KeyCrmState())
    expected = ids[status] if status else None
    assert StatusMap().value_for(outcome, call_successful) == expected


def test_status_map_defaults_are_the_demo_pipeline_s_statuses() -> None:
    ids = seed_demo(KeyCrmState())
    assert StatusMap().model_dump() == {outcome: ids[outcome] for outcome in OUTCOMES}
    assert set(StatusMap.model_fields) == set(OUTCOMES)
    changed = StatusMap.model_validate({"callback": 7})
    assert (
        changed.value_for("callback", None) == 7
        and changed.value_for("interested", None) == ids["interested"]
    )


def test_config_defaults() -> None:
    settings = KeyCrmSettings()
    assert (settings.pipeline_id, settings.custom_fields, settings.note_field) == (None, {}, None)
    assert settings.requests_per_minute == 60
    assert set(integration.default_configs) == {"keycrm", "status_map", "call_handling", "retention"}
    assert integration.secrets == SECRETS
    assert integration.call_flow is not None
    assert (integration.call_flow.lookup, integration.call_flow.postcall) == ("crm-lookup", "crm-postcall")
    assert MIGRATIONS == []


def test_summary_text_and_note() -> None:
    base = {"call_id": "c", "phone_number": DEMO_PHONE, "attempt": 3}
    assert summary_text(PostcallPayload.model_validate(base)) is None
    only_eleven = PostcallPayload.model_validate({**base, "transcript_summary": " Коротко. "})
    assert summary_text(only_eleven) == "AI call, attempt 3: unknown\nКоротко."
    next_only = PostcallPayload.model_validate(
        {**base, "analysis": analysis("callback", "", "Дзвонити в п'ятницю")}
    )
    assert summary_text(next_only) == "AI call, attempt 3: callback\nNext: Дзвонити в п'ятницю"
    assert with_note(None, "B") == "B" and with_note("A \n", "B") == "A\n\nB"
