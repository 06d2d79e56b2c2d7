"""The keycrm handlers, run inline and durably against real PostgreSQL and the KeyCRM simulator over real HTTP.

Each mode gets an `IntegrationTestEnv` of its own: a database of its own (KeyCRM's pacing is kept
there too), so it runs beside every other test of the session (`make test` runs it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from happ_integ import OUTCOMES, CallAnalysis, LookupResult, PostcallPayload
from happ_integ.testing import DEMO, IntegrationTestEnv
from integrations.keycrm import integration
from integrations.keycrm.config import KeyCrmSettings, StatusMap
from integrations.keycrm.handlers.crm_postcall import summary_text, with_note
from integrations.keycrm.migrations import MIGRATIONS
from integrations.keycrm.models import PostcallResult

SECRETS = ("KEYCRM_API_KEY",)
UNKNOWN_PHONE = "+380671234567"
IDS = DEMO.keycrm
# Quick tests: far above KeyCRM's 60 a minute (tests/stores/test_pacing.py checks the pacing itself).
FAST = {"requests_per_minute": 6000}


@dataclasses.dataclass
class Fields:
    """Custom fields added to the simulated KeyCRM: one on cards, one on buyers (their uuids)."""

    card: str
    buyer: str


@pytest.fixture(scope="module", params=["inline", "durable"])
async def started(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[IntegrationTestEnv]:
    durable = request.param == "durable"
    async with IntegrationTestEnv.start(integration, database_url=pg_url, durable=durable) as env:
        yield env


@pytest.fixture(scope="module")
def fields(started: IntegrationTestEnv) -> Fields:
    crm = started.sims.keycrm
    return Fields(
        card=crm.add_custom_field("lead", "Last call summary", "textarea"),
        buyer=crm.add_custom_field("client", "City"),
    )


@pytest.fixture
async def env(started: IntegrationTestEnv, fields: Fields) -> IntegrationTestEnv:
    """The module's env as a test finds it: configs, secrets and the demo card as they started."""
    await started.reset()
    await started.set_config("keycrm", FAST)
    card(started).update(status_id=IDS["new"], pipeline_id=IDS["pipeline"], note=None)
    card(started)["custom_fields"] = {}
    started.sims.keycrm.buyers[IDS["buyer"]]["custom_fields"] = {}
    started.sims.keycrm.clear_requests()
    return started


def card(env: IntegrationTestEnv) -> dict[str, Any]:
    return env.sims.keycrm.cards[IDS["card"]]


def puts(env: IntegrationTestEnv) -> list[Any]:
    return env.sims.keycrm.requests_to("PUT", "/v1/pipelines/cards/")


async def lookup(env: IntegrationTestEnv, phone: str) -> LookupResult:
    return await env.run("crm-lookup", {"call_id": "c_1", "phone_number": phone}, LookupResult)


async def postcall(env: IntegrationTestEnv, **values: Any) -> PostcallResult:
    payload = {"call_id": "c_1", "phone_number": DEMO.phone, "attempt": 1, **values}
    return await env.run("crm-postcall", payload, PostcallResult)


def logged_by_handler(env: IntegrationTestEnv) -> str:
    """Everything the handler's own code and steps logged (the run's start event shows the payload)."""
    return " ".join(repr(e) for e in env.log.events if e.event != "handler:start")


def analysis(outcome: str, summary: str = "", next_action: str | None = None) -> dict[str, Any]:
    return CallAnalysis.model_validate(
        {"outcome": outcome, "summary": summary, "next_action": next_action}
    ).model_dump(mode="json")


# crm-lookup --------------------------------------------------------------------------------------


async def test_lookup_finds_the_demo_buyer_and_its_open_card(env: IntegrationTestEnv) -> None:
    result = await lookup(env, DEMO.phone)
    assert result == LookupResult(
        found=True,
        record_id=str(IDS["card"]),
        variables={"client_name": "Іван Петренко", "company": "ТОВ Компанія", "manager": "Олена Коваль"},
    )
    [search] = env.sims.keycrm.requests_to("GET", "/v1/buyer")
    assert search.query["filter[buyer_phone]"] == "380994829573"
    assert set(search.query["include"].split(",")) >= {"company", "manager", "custom_fields"}
    # Cards cannot be filtered by phone: they are read by the buyer's id, never asked for by phone.
    [cards] = env.sims.keycrm.requests_to("GET", "/v1/pipelines/cards")
    assert "380994829573" not in str(cards.query)
    assert DEMO.phone not in logged_by_handler(env)
    assert "+38099*****73" in logged_by_handler(env)


async def test_lookup_reads_the_configured_custom_fields_from_the_card_and_the_buyer(
    env: IntegrationTestEnv, fields: Fields
) -> None:
    await env.set_config(
        "keycrm",
        {
            **FAST,
            "custom_fields": {"city": fields.buyer, "last_call": fields.card, "none": "LD_9"},
        },
    )
    env.sims.keycrm.buyers[IDS["buyer"]]["custom_fields"][fields.buyer] = "Львів"
    card(env)["custom_fields"][fields.card] = ["Дивани", "Крісла"]
    result = await lookup(env, DEMO.phone)
    assert result.record_id == str(IDS["card"])
    assert result.variables == {
        "client_name": "Іван Петренко",
        "company": "ТОВ Компанія",
        "manager": "Олена Коваль",
        "city": "Львів",
        "last_call": "Дивани, Крісла",
    }


async def test_lookup_takes_only_an_open_card_of_the_configured_pipeline(env: IntegrationTestEnv) -> None:
    _, (elsewhere,) = env.sims.keycrm.add_pipeline("Retention", ["Call back"])
    other = env.sims.keycrm.add_card(
        elsewhere, {"full_name": "Іван Петренко", "phone": DEMO.phone, "client_id": IDS["buyer"]}
    )
    try:
        await env.set_config("keycrm", {**FAST, "pipeline_id": IDS["pipeline"]})
        assert (await lookup(env, DEMO.phone)).record_id == str(IDS["card"])
        assert env.sims.keycrm.requests_to("GET", "/v1/pipelines/cards")[-1].query[
            "filter[pipeline_id]"
        ] == str(IDS["pipeline"])
        # A card in a final status ("Not interested") is closed: nothing to call it about.
        card(env)["status_id"] = IDS["not_interested"]
        result = await lookup(env, DEMO.phone)
        assert result == LookupResult(
            found=True,
            record_id=None,
            variables={"client_name": "Іван Петренко", "company": "ТОВ Компанія", "manager": "Олена Коваль"},
            note="the buyer has no open card: nothing to update",
        )
        assert env.log.named("KeyCRM buyer has no open card")
        # Any pipeline: the open card of the other one.
        await env.set_config("keycrm", {**FAST, "pipeline_id": None})
        assert (await lookup(env, DEMO.phone)).record_id == str(other)
    finally:
        del env.sims.keycrm.cards[other]


async def test_lookup_of_an_unknown_number_finds_nothing(env: IntegrationTestEnv) -> None:
    result = await lookup(env, UNKNOWN_PHONE)
    assert result == LookupResult(found=False, note="no KeyCRM buyer for this number")
    assert env.log.named("No KeyCRM buyer for this number")
    assert env.sims.keycrm.requests_to("GET", "/v1/pipelines/cards") == []
    assert UNKNOWN_PHONE not in logged_by_handler(env)


async def test_lookup_without_credentials_asks_nobody(env: IntegrationTestEnv) -> None:
    assert await env.secret("KEYCRM_API_KEY") == env.sims.keycrm.api_key
    await env.set_secrets(KEYCRM_API_KEY="")
    result = await lookup(env, DEMO.phone)
    assert result == LookupResult(found=False, note="KeyCRM credentials are not configured")
    assert env.sims.keycrm.requests == []


# crm-postcall ------------------------------------------------------------------------------------


async def test_postcall_moves_the_card_and_writes_the_note_once(env: IntegrationTestEnv) -> None:
    record_id = str(IDS["card"])
    result = await postcall(
        env,
        record_id=record_id,
        duration_seconds=61,
        call_successful="success",
        transcript_summary="ElevenLabs' own summary",
        analysis=analysis("callback", "Просить передзвонити завтра о 10.", "Передзвонити завтра"),
    )
    assert result == PostcallResult(
        success=True,
        record_id=record_id,
        status_id=IDS["callback"],
        outcome="callback",
        written=["status", "summary"],
    )
    assert card(env)["status_id"] == IDS["callback"]
    assert card(env)["note"] == (
        "AI call, attempt 1: callback\nПросить передзвонити завтра о 10.\nNext: Передзвонити завтра"
    )
    # One write, carrying both: the status and the note.
    [put] = puts(env)
    assert put.json == {"status_id": IDS["callback"], "note": card(env)["note"]}
    # The lookup's card id is used as it is: no second search.
    assert env.sims.keycrm.requests_to("GET", "/v1/buyer") == []
    assert [r.path for r in env.sims.keycrm.requests_to("GET")] == [f"/v1/pipelines/cards/{record_id}"]


async def test_postcall_adds_the_summary_after_the_card_s_note(env: IntegrationTestEnv) -> None:
    card(env)["note"] = "Менеджер: клієнт з виставки"
    await postcall(
        env, record_id=str(IDS["card"]), attempt=2, analysis=analysis("interested", "Хоче кутовий диван.")
    )
    assert (
        card(env)["note"]
        == "Менеджер: клієнт з виставки\n\nAI call, attempt 2: interested\nХоче кутовий диван."
    )
    assert card(env)["status_id"] == IDS["interested"]
    assert len(puts(env)) == 1


async def test_postcall_writes_the_summary_into_the_configured_custom_field(
    env: IntegrationTestEnv, fields: Fields
) -> None:
    card(env)["note"] = "untouched"
    await env.set_config("keycrm", {**FAST, "note_field": fields.card})
    result = await postcall(
        env, record_id=str(IDS["card"]), analysis=analysis("not_interested", "Вже купив.")
    )
    assert result.written == ["status", "summary"] and result.status_id == IDS["not_interested"]
    [put] = puts(env)
    text = "AI call, attempt 1: not_interested\nВже купив."
    assert put.json == {
        "status_id": IDS["not_interested"],
        "custom_fields": [{"uuid": fields.card, "value": text}],
    }
    assert card(env)["custom_fields"] == {fields.card: text}
    assert card(env)["note"] == "untouched"
    # No read of the card first: a custom field is overwritten, not added to.
    assert env.sims.keycrm.requests_to("GET") == []


async def test_postcall_without_analysis_maps_elevenlabs_verdict_and_summary(env: IntegrationTestEnv) -> None:
    result = await postcall(
        env, record_id=str(IDS["card"]), call_successful="failure", transcript_summary="Не цікаво."
    )
    assert (result.status_id, result.outcome) == (IDS["not_interested"], "failure")
    assert card(env)["note"] == "AI call, attempt 1: failure\nНе цікаво."
    assert card(env)["status_id"] == IDS["not_interested"]


async def test_postcall_with_no_status_for_the_outcome_writes_only_the_summary(
    env: IntegrationTestEnv,
) -> None:
    await env.set_config("status_map", {"voicemail": None})
    result = await postcall(
        env, record_id=str(IDS["card"]), analysis=analysis("voicemail", "Автовідповідач.")
    )
    assert (result.status_id, result.written) == (None, ["summary"])
    [put] = puts(env)
    assert "status_id" not in put.json
    assert card(env)["status_id"] == IDS["new"]
    # Neither a status nor a summary: nothing is written at all.
    env.sims.keycrm.clear_requests()
    nothing = await postcall(env, record_id=str(IDS["card"]), call_successful="unknown")
    assert nothing.written == [] and nothing.success
    assert env.sims.keycrm.requests == []


async def test_postcall_without_a_record_writes_nothing(env: IntegrationTestEnv) -> None:
    result = await postcall(
        env, duration_seconds=30, call_successful="success", analysis=analysis("interested")
    )
    assert result == PostcallResult(success=True, note="no KeyCRM card: nothing written")
    assert env.sims.keycrm.requests == []
    assert card(env)["status_id"] == IDS["new"] and card(env)["note"] is None
    assert env.log.named("No KeyCRM card for this call: nothing written")


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
    expected = IDS[status] if status else None
    assert StatusMap().value_for(outcome, call_successful) == expected


def test_status_map_defaults_are_the_demo_pipeline_s_statuses() -> None:
    assert StatusMap().model_dump() == {outcome: IDS[outcome] for outcome in OUTCOMES}
    assert set(StatusMap.model_fields) == set(OUTCOMES)
    changed = StatusMap.model_validate({"callback": 7})
    assert (
        changed.value_for("callback", None) == 7
        and changed.value_for("interested", None) == IDS["interested"]
    )


def test_config_defaults() -> None:
    settings = KeyCrmSettings()
    assert (settings.pipeline_id, settings.custom_fields, settings.note_field) == (None, {}, None)
    assert settings.requests_per_minute == 60
    assert set(integration.default_configs) == {
        "keycrm",
        "status_map",
        "call_handling",
        "retention",
        "contact_policy",
    }
    assert integration.secrets == SECRETS
    assert integration.call_flow is not None
    assert (integration.call_flow.lookup, integration.call_flow.postcall) == ("crm-lookup", "crm-postcall")
    assert MIGRATIONS == []


def test_summary_text_and_note() -> None:
    base = {"call_id": "c", "phone_number": DEMO.phone, "attempt": 3}
    assert summary_text(PostcallPayload.model_validate(base)) is None
    only_eleven = PostcallPayload.model_validate({**base, "transcript_summary": " Коротко. "})
    assert summary_text(only_eleven) == "AI call, attempt 3: unknown\nКоротко."
    next_only = PostcallPayload.model_validate(
        {**base, "analysis": analysis("callback", "", "Дзвонити в п'ятницю")}
    )
    assert summary_text(next_only) == "AI call, attempt 3: callback\nNext: Дзвонити в п'ятницю"
    assert with_note(None, "B") == "B" and with_note("A \n", "B") == "A\n\nB"
