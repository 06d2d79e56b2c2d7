"""The call flow's webhooks as their senders use them: signatures, duplicates, unknown calls, a
post-call that names no call, agent-init from the stored lookup, numbers that are not numbers,
and Temporal out of reach."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.app import create_app
from happ_integ.calls.config import CallingHours
from happ_integ.campaigns.models import CampaignSettings
from happ_integ.embedded.process import free_port
from happ_integ.integration import discover_integrations
from simulator import sign_elevenlabs
from simulator.calls import Play, SimCall
from simulator.elevenlabs_state import audio_payload, postcall_payload
from simulator.voice import call_event
from tests.e2e.call_stack import ADMIN, HOOK_TOKEN, CallStack, phone, start_call_stack

pytestmark = pytest.mark.timeout(300)
HOOK = {"Authorization": f"Bearer {HOOK_TOKEN}"}


@pytest.fixture(scope="module")
async def hooks(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    # No auto-play: each test plays its calls' webhooks itself.
    stack = await start_call_stack(pg_url, tmp_path_factory.mktemp("hook-logs"), None)  # type: ignore[arg-type]
    stack.start_worker()
    try:
        yield stack
    finally:
        await stack.close()


def signed(
    stack: CallStack, body: dict[str, Any], secret: str | None = None, ts: int | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    header = sign_elevenlabs(secret or stack.sims.voice.webhook_secret, raw, ts or int(time.time()))
    return raw, {"ElevenLabs-Signature": header, "Content-Type": "application/json"}


async def post_event(stack: CallStack, body: dict[str, Any]) -> httpx.Response:
    return await stack.http.post("/sofa/webhook/call-events", json=body, headers=stack.hook)


async def answer_call(stack: CallStack, call_id: str, call: SimCall, duration: int = 40) -> dict[str, Any]:
    """call_start and call_end of an answered call; returns the post-call body ElevenLabs would send."""
    assert (await post_event(stack, call_event(call, "call_start"))).status_code == 200
    assert (await post_event(stack, call_event(call, "call_end", duration))).status_code == 200
    await stack.until_status(call_id, "waiting_postcall")
    return postcall_payload(stack.sims.voice, call, Play.answered(duration), {}, int(time.time()))


async def test_signatures_are_checked_before_anything_reaches_a_call(hooks: CallStack) -> None:
    call_id, call = await hooks.dialed(phone(501))
    body = await answer_call(hooks, call_id, call)
    raw, headers = signed(hooks, body)
    attempts = {
        "wrong secret": signed(hooks, body, secret="not-the-secret")[1],
        "stale": signed(hooks, body, ts=int(time.time()) - 31 * 60)[1],
        "missing": {"Content-Type": "application/json"},
        "malformed": {"ElevenLabs-Signature": "t=abc,v0=xyz", "Content-Type": "application/json"},
    }
    for why, bad_headers in attempts.items():
        resp = await hooks.http.post("/sofa/webhook/agent-postcall", content=raw, headers=bad_headers)
        assert resp.status_code == 401, (why, resp.text)
    tampered = raw.replace(b'"done"', b'"fail"')
    resp = await hooks.http.post("/sofa/webhook/agent-postcall", content=tampered, headers=headers)
    assert resp.status_code == 401
    assert (await hooks.state(call_id))["status"] == "waiting_postcall"  # none of them reached it
    resp = await hooks.http.post("/sofa/webhook/agent-postcall", content=raw, headers=headers)
    assert resp.status_code == 200, resp.text
    await hooks.until_status(call_id, "completed")


async def test_duplicate_events_and_postcalls_change_nothing(hooks: CallStack) -> None:
    call_id, call = await hooks.dialed(phone(502))
    start = call_event(call, "call_start")
    first = await post_event(hooks, start)
    again = await post_event(hooks, start)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    end = call_event(call, "call_end", 40)
    answers = [await post_event(hooks, end) for _ in range(3)]
    assert all(a.json() == answers[0].json() for a in answers)
    assert answers[0].json()["status"] == "waiting_postcall" and answers[0].json()["scheduledRetry"] is False
    body = postcall_payload(hooks.sims.voice, call, Play.answered(40), {}, int(time.time()))
    raw, headers = signed(hooks, body)
    replies = [
        await hooks.http.post("/sofa/webhook/agent-postcall", content=raw, headers=headers) for _ in range(2)
    ]
    assert [r.status_code for r in replies] == [200, 200]
    state = await hooks.until_status(call_id, "completed")
    assert state["attempt"] == 1 and len(state["attempts"]) == 1
    record = hooks.records[phone(502)]
    assert hooks.writes_to(record, "create-comment") == 1 and hooks.writes_to(record, "create-call-log") == 1
    # After the call ended, a late redelivery is still answered, and still changes nothing.
    late = await hooks.http.post("/sofa/webhook/agent-postcall", content=raw, headers=headers)
    assert late.status_code == 200 and hooks.writes_to(record, "create-comment") == 1
    # Deliveries the ended call never saw: the recording, which comes after the transcription,
    # and a call_end that differs from the one applied. Answered 200, stored, nothing changes.
    audio, audio_headers = signed(
        hooks, audio_payload(hooks.sims.voice, call, int(time.time()), b"\x80" * 800)
    )
    late_audio = await hooks.http.post("/sofa/webhook/agent-postcall", content=audio, headers=audio_headers)
    assert late_audio.status_code == 200, late_audio.text
    assert late_audio.json()["message"] == "the call has ended: nothing changed"
    stored = await hooks.resources.pool.fetchval(
        "SELECT count(*) FROM sofa_call_documents WHERE kind = 'audio' AND call_id = $1", call_id
    )
    assert stored == 1
    other_end = await post_event(hooks, call_event(call, "call_end", 41))
    assert other_end.status_code == 200 and other_end.json()["status"] == "completed"
    assert (await hooks.state(call_id))["attempt"] == 1


async def test_unknown_calls_are_404(hooks: CallStack) -> None:
    resp = await post_event(hooks, {"eventType": "call_end", "callId": "c_nosuchcall", "duration": 3})
    assert resp.status_code == 404 and resp.json()["success"] is False
    resp = await hooks.http.get("/sofa/calls/c_nosuchcall", headers={"Authorization": f"Bearer {ADMIN}"})
    assert resp.status_code == 404


async def test_a_postcall_without_call_id_finds_its_call_by_number(hooks: CallStack) -> None:
    number = phone(503)
    call_id, call = await hooks.dialed(number)
    body = await answer_call(hooks, call_id, call)
    # As in the reference example: the dynamic variables carry only the number.
    body["data"]["conversation_initiation_client_data"] = {"dynamic_variables": {"phone_number": number}}
    body["data"]["conversation_id"] = "conv-unknown-to-us"
    raw, headers = signed(hooks, body)
    resp = await hooks.http.post("/sofa/webhook/agent-postcall", content=raw, headers=headers)
    assert resp.status_code == 200, resp.text
    await hooks.until_status(call_id, "completed")


async def test_a_verified_postcall_for_no_call_is_stored_and_202(hooks: CallStack) -> None:
    body = {
        "type": "post_call_transcription",
        "event_timestamp": int(time.time()),
        "data": {"conversation_id": "conv-orphan", "status": "done", "transcript": []},
    }
    raw, headers = signed(hooks, body)
    resp = await hooks.http.post("/sofa/webhook/agent-postcall", content=raw, headers=headers)
    assert (
        resp.status_code == 202 and resp.json()["stored"] == "unmatched_post_call_transcription:conv-orphan"
    )
    stored = await hooks.resources.calls("sofa").document("unmatched_post_call_transcription:conv-orphan")
    assert stored is not None and stored["body"]["data"]["conversation_id"] == "conv-orphan"


async def test_agent_init_answers_a_call_in_flight_from_its_stored_lookup(hooks: CallStack) -> None:
    number = phone(504)
    call_id, _ = await hooks.dialed(number)
    searches = len(hooks.sims.nethunt.requests_to("GET", "/api/v1/zapier/searches/"))
    resp = await hooks.http.post("/sofa/webhook/agent-init", json={"phone_number": number}, headers=HOOK)
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["type"] == "conversation_initiation_client_data"
    variables = answer["dynamic_variables"]
    assert variables["call_id"] == call_id and variables["client_name"] == f"Лід {number[-4:]}"
    assert variables["company"] == "ТОВ Тест" and variables["lead_source"] == "Ads"
    assert set(variables) >= {"today_is", "time", "weekday"}
    assert variables["weekday"] in (
        "Неділя",
        "Понеділок",
        "Вівторок",
        "Середа",
        "Четвер",
        "П'ятниця",
        "Субота",
    )
    assert (
        len(hooks.sims.nethunt.requests_to("GET", "/api/v1/zapier/searches/")) == searches
    )  # no new CRM request


async def test_agent_init_looks_a_cold_number_up_and_never_fails(hooks: CallStack) -> None:
    demo = "+380994829573"  # the demo lead, with no call in flight
    resp = await hooks.http.post("/sofa/webhook/agent-init", json={"phone_number": demo}, headers=HOOK)
    variables = resp.json()["dynamic_variables"]
    assert variables["client_name"] == "Іван Петренко" and "call_id" not in variables
    for body in ({"phone_number": "not a number"}, {}, {"called_number": "+380994829573"}):
        resp = await hooks.http.post("/sofa/webhook/agent-init", json=body, headers=HOOK)
        assert resp.status_code == 200 and {"today_is", "time", "weekday"} <= set(
            resp.json()["dynamic_variables"]
        )
    hooks.sims.nethunt.fail_next(500, times=10)
    resp = await hooks.http.post(
        "/sofa/webhook/agent-init", json={"phone_number": "+380994829574"}, headers=HOOK
    )
    assert resp.status_code == 200 and set(resp.json()["dynamic_variables"]) == {
        "today_is",
        "time",
        "weekday",
    }
    hooks.sims.nethunt._failures.clear()


async def test_agent_init_tells_the_date_in_the_callees_own_zone(hooks: CallStack) -> None:
    """With calling hours in the callee's zone, a Japanese number hears Tokyo's date and time; a
    Russian mobile (16 zones) and an integration-zone setup hear the integration's (Kyiv)."""
    config = hooks.resources.config("sofa")
    saved = await config.get_raw("call_handling")
    hours = {"timezone": "recipient", "start": "00:00", "end": "23:59", "weekdays": [1, 2, 3, 4, 5, 6, 7]}
    await config.set("call_handling", {**(saved or {}), "calling_hours": hours})
    try:

        async def spoken(number: str) -> dict[str, str]:
            resp = await hooks.http.post(
                "/sofa/webhook/agent-init", json={"phone_number": number}, headers=HOOK
            )
            assert resp.status_code == 200, resp.text
            return resp.json()["dynamic_variables"]  # type: ignore[no-any-return]

        async def hears(number: str, zone: str) -> None:
            """The hour told is `zone`'s (polled: the gateway hears of a config change by NOTIFY)."""
            deadline = time.monotonic() + 10
            while True:
                told = int((await spoken(number))["time"][:2])
                now = datetime.now(ZoneInfo(zone))
                if told in {now.hour, (now - timedelta(minutes=1)).hour}:
                    return
                assert time.monotonic() < deadline, f"{number} hears hour {told}, not {zone}'s"
                await asyncio.sleep(0.2)

        await hears("+81312345678", "Asia/Tokyo")
        await hears("+79161234567", "Europe/Kyiv")  # 16 zones: the integration's
        await config.set(
            "call_handling", {**(saved or {}), "calling_hours": {**hours, "timezone": "Europe/Kyiv"}}
        )
        await hears("+81312345678", "Europe/Kyiv")
    finally:
        await config.set("call_handling", saved or {})


async def test_agent_init_reads_the_hours_of_the_calls_campaign(hooks: CallStack) -> None:
    """A campaign's calling hours replace the integration's for its calls, so when the campaign
    reads its window in the callee's zone, its call's agent tells the callee's date and time: a
    Japanese number in such a campaign hears Tokyo's hour while the integration's zone is Kyiv."""
    assert (await hooks.resources.call_handling("sofa")).calling_hours is None  # Kyiv's hours
    hours = CallingHours(timezone="recipient", start="00:00", end="23:59", weekdays=[1, 2, 3, 4, 5, 6, 7])
    await hooks.resources.campaigns("sofa").create(
        "cmp_tokyo_hours", "Tokyo", CampaignSettings(calling_hours=hours), []
    )
    calls = hooks.resources.calls("sofa")
    number = "+81312345670"
    call_id, _ = await calls.claim("call_tokyo_hours", number, "wf-tokyo", {"campaign_id": "cmp_tokyo_hours"})
    try:
        resp = await hooks.http.post(
            "/sofa/webhook/agent-init", json={"phone_number": number, "call_id": call_id}, headers=HOOK
        )
        assert resp.status_code == 200, resp.text
        told = int(resp.json()["dynamic_variables"]["time"][:2])
        now = datetime.now(ZoneInfo("Asia/Tokyo"))
        assert told in {now.hour, (now - timedelta(minutes=1)).hour}, f"hour {told} is not Tokyo's"
    finally:
        await hooks.resources.pool.execute(f"DELETE FROM {calls.calls} WHERE call_id = $1", call_id)


async def test_call_originate_validates_numbers_and_keeps_one_call_per_number(hooks: CallStack) -> None:
    assert (
        await hooks.http.post("/sofa/webhook/call-originate", json={"phone_number": "+380991234567"})
    ).status_code == 401
    resp = await hooks.http.post("/sofa/webhook/call-originate", json={"phone_number": "12"}, headers=HOOK)
    assert resp.status_code == 422 and "'12'" in resp.json()["error"]
    number = phone(505)
    hooks.add_leads([number])
    batch = {"calls": [{"phone_number": number}, {"phone_number": "nope"}, {"phone_number": "099 000 0505"}]}
    resp = await hooks.http.post("/sofa/webhook/call-originate", json=batch, headers=HOOK)
    assert resp.status_code == 200, resp.text
    first, bad, same = resp.json()["calls"]
    assert first["success"] and not bad["success"] and "nope" in bad["error"]
    # 099 000 0505 is the same number in national form: it gets the call already in flight.
    assert same["success"] and same["callId"] == first["callId"] and same["existing"] is True
    again = await hooks.http.post("/sofa/webhook/call-originate", json={"phone_number": number}, headers=HOOK)
    assert again.json()["callId"] == first["callId"]


async def test_calls_can_be_listed_and_cancelled(hooks: CallStack) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    await hooks.resources.config("sofa").set(
        "call_handling", {"concurrency_limit": 3, "calling_hours": None, "retry_delays_seconds": [3600]}
    )
    call_id, call = await hooks.dialed(phone(506))
    await post_event(hooks, call_event(call, "call_end", 0, "no_answer"))
    await hooks.until_status(call_id, "scheduled")
    page = (
        await hooks.http.get("/sofa/calls", params={"status": "scheduled", "limit": 500}, headers=admin)
    ).json()
    assert call_id in [c["call_id"] for c in page["calls"]]
    assert all(c["phone_masked"].count("*") >= 5 for c in page["calls"])
    resp = await hooks.http.post(f"/sofa/calls/{call_id}/cancel", headers=admin)
    assert resp.status_code == 200 and resp.json()["cancel_requested"] is True
    await hooks.until_status(call_id, "cancelled")
    assert (await hooks.http.post(f"/sofa/calls/{call_id}/cancel", headers=admin)).status_code == 409
    first = (await hooks.http.get("/sofa/calls", params={"limit": 1}, headers=admin)).json()
    second = (
        await hooks.http.get(
            "/sofa/calls", params={"limit": 1, "cursor": first["next_cursor"]}, headers=admin
        )
    ).json()
    assert first["calls"][0]["call_id"] != second["calls"][0]["call_id"]
    await hooks.resources.config("sofa").set(
        "call_handling", {"concurrency_limit": 3, "calling_hours": None, "postcall_timeout_seconds": 60}
    )


async def test_temporal_out_of_reach_is_503_and_leaves_no_call_behind(hooks: CallStack) -> None:
    settings = hooks.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    app = create_app(settings, discover_integrations(["sofa"]))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://happ") as http:
            resp = await http.post(
                "/sofa/webhook/call-originate", json={"phone_number": phone(507)}, headers=HOOK
            )
            assert (
                resp.status_code == 503
                and resp.headers["retry-after"]
                and resp.json()["dependency"] == "Temporal"
            )
            resp = await http.post(
                "/sofa/webhook/call-events", json={"eventType": "call_start", "callId": "c_x"}, headers=HOOK
            )
            assert resp.status_code in (404, 503)
    assert await hooks.resources.calls("sofa").in_flight_by_phone(phone(507)) is None
