"""The call's senders authenticate, as an outside attacker would find out: call-events and
agent-init take the integration's sender token (SENDER_TOKEN, else WEBHOOK_TOKEN) as a bearer
header or a `token` query parameter; without it call-events is 401 before any lookup, and
agent-init answers the date and time and nothing of the CRM. An event that carries another
provider call id than the call's attempt got is refused (409) and changes nothing; an ElevenLabs
failure webhook that beats the outbound-call answer still ends its attempt at once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from simulator.calls import Play
from simulator.voice import call_event
from tests.e2e.call_stack import ADMIN, HOOK_TOKEN, CallStack, phone, start_call_stack

pytestmark = pytest.mark.timeout(300)
HOOK = {"Authorization": f"Bearer {HOOK_TOKEN}"}
DATE_ONLY = {"today_is", "time", "weekday"}


@pytest.fixture(scope="module")
async def senders(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    # No auto-play: each test sends its calls' webhooks itself, as a sender (or an attacker) would.
    stack = await start_call_stack(pg_url, tmp_path_factory.mktemp("sender-logs"), None)  # type: ignore[arg-type]
    stack.start_worker()
    try:
        yield stack
    finally:
        await stack.close()


async def test_call_events_without_the_sender_token_are_refused_before_any_lookup(senders: CallStack) -> None:
    call_id, call = await senders.dialed(phone(601))
    await senders.until_status(call_id, "dialing")
    forged = call_event(call, "call_end", 0, "busy")
    for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": f"Bearer {ADMIN}"}):
        resp = await senders.http.post("/sofa/webhook/call-events", json=forged, headers=headers)
        assert resp.status_code == 401, resp.text
    wrong_query = await senders.http.post("/sofa/webhook/call-events?token=nope", json=forged)
    assert wrong_query.status_code == 401
    # An unknown call is 401 too, not 404: nothing is looked up for a caller without the token.
    unknown = {"eventType": "call_start", "callId": "c_00000000000000000000"}
    assert (await senders.http.post("/sofa/webhook/call-events", json=unknown)).status_code == 401
    assert (
        await senders.http.post("/sofa/webhook/call-events", json=unknown, headers=HOOK)
    ).status_code == 404
    # The forged busy changed nothing: the call still holds its attempt and its slot.
    assert (await senders.state(call_id))["status"] == "dialing"
    # The sender's own token in the URL (for a sender that cannot set headers) is accepted.
    start = await senders.http.post(
        "/sofa/webhook/call-events", params={"token": HOOK_TOKEN}, json=call_event(call, "call_start")
    )
    assert start.status_code == 200 and start.json()["status"] == "in_progress"
    end = await senders.http.post(
        "/sofa/webhook/call-events",
        params={"token": HOOK_TOKEN},
        json=call_event(call, "call_end", 0, "busy"),
    )
    assert end.status_code == 200


async def test_agent_init_without_the_token_answers_the_date_and_time_only(senders: CallStack) -> None:
    number = phone(602)
    call_id, _ = await senders.dialed(number)
    searches = len(senders.sims.nethunt.requests_to("GET", "/api/v1/zapier/searches/"))
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        resp = await senders.http.post(
            "/sofa/webhook/agent-init", json={"phone_number": number}, headers=headers
        )
        assert resp.status_code == 200
        assert set(resp.json()["dynamic_variables"]) == DATE_ONLY  # no call id, nothing of the CRM
    cold = await senders.http.post("/sofa/webhook/agent-init", json={"phone_number": "+380994829573"})
    assert set(cold.json()["dynamic_variables"]) == DATE_ONLY
    assert len(senders.sims.nethunt.requests_to("GET", "/api/v1/zapier/searches/")) == searches
    # With the token (here in the URL) the agent gets what the lookup found, and the call's id.
    resp = await senders.http.post(
        "/sofa/webhook/agent-init", params={"token": HOOK_TOKEN}, json={"phone_number": number}
    )
    variables = resp.json()["dynamic_variables"]
    assert variables["call_id"] == call_id and variables["client_name"] == f"Лід {number[-4:]}"
    # Refused agent-inits are counted, so a sender left without its token shows in /metrics.
    metrics = (await senders.http.get("/metrics")).text
    assert (
        'happ_webhook_auth_failures_total{handler="agent_init",integration="sofa",scheme="sender"}' in metrics
    )


async def test_an_event_with_another_provider_call_id_is_409_and_changes_nothing(senders: CallStack) -> None:
    call_id, call = await senders.dialed(phone(603))
    await senders.until_status(call_id, "dialing")
    deadline = time.monotonic() + 10
    while (await senders.state(call_id))["provider_call_id"] != call.provider_call_id:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    forged = call_event(call, "call_end", 0, "busy")
    forged["metadata"]["provider_call_id"] = "va_someone_else"
    resp = await senders.http.post("/sofa/webhook/call-events", json=forged, headers=HOOK)
    assert resp.status_code == 409, resp.text
    top_level = {**call_event(call, "call_start"), "provider_call_id": "va_someone_else"}
    assert (
        await senders.http.post("/sofa/webhook/call-events", json=top_level, headers=HOOK)
    ).status_code == 409
    after = await senders.state(call_id)
    assert after["status"] == "dialing" and after["attempts"][0]["outcome"] is None
    # The call's own events, with its own id, still go through.
    own = await senders.http.post(
        "/sofa/webhook/call-events", json=call_event(call, "call_start"), headers=HOOK
    )
    assert own.status_code == 200 and own.json()["status"] == "in_progress"
    await senders.http.post(
        "/sofa/webhook/call-events", json=call_event(call, "call_end", 0, "busy"), headers=HOOK
    )


async def test_the_sender_token_of_its_own_replaces_the_webhook_token_on_sender_routes(
    senders: CallStack,
) -> None:
    own = "sender-" + HOOK_TOKEN[::-1]
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert (
        await senders.http.put("/sofa/secrets", json={"SENDER_TOKEN": own}, headers=admin)
    ).status_code == 200
    try:
        _, call = await senders.dialed(phone(604))  # call-originate still takes WEBHOOK_TOKEN
        start = call_event(call, "call_start")
        assert (
            await senders.http.post("/sofa/webhook/call-events", json=start, headers=HOOK)
        ).status_code == 401
        with_own = {"Authorization": f"Bearer {own}"}
        assert (
            await senders.http.post("/sofa/webhook/call-events", json=start, headers=with_own)
        ).status_code == 200
        init = await senders.http.post(
            "/sofa/webhook/agent-init", json={"phone_number": phone(604)}, headers=HOOK
        )
        assert set(init.json()["dynamic_variables"]) == DATE_ONLY
        end = call_event(call, "call_end", 0, "busy")
        assert (
            await senders.http.post("/sofa/webhook/call-events", json=end, headers=with_own)
        ).status_code == 200
    finally:
        assert (
            await senders.http.put("/sofa/secrets", json={"SENDER_TOKEN": ""}, headers=admin)
        ).status_code == 200


async def test_the_token_in_a_query_never_reaches_a_log(senders: CallStack) -> None:
    # Another replica as production runs it, with uvicorn's access log on: the line of every request.
    base = await senders.start_api(HAPP_API_ACCESS_LOG="1")
    env_log = senders.workers[-1].log
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for _ in range(2):
            resp = await http.post(
                "/sofa/webhook/agent-init",
                params={"token": HOOK_TOKEN, "x": "1"},
                json={"phone_number": phone(605)},
            )
            assert resp.status_code == 200
    await asyncio.sleep(0.5)
    text = env_log.read_text()
    assert "/sofa/webhook/agent-init" in text, text[-2000:]  # the access log is on, and saw the requests
    assert HOOK_TOKEN not in text
    assert HOOK_TOKEN not in "\n".join(str(e) for e in senders.capture.events)


async def test_an_elevenlabs_failure_that_beats_the_dial_answer_ends_the_attempt_at_once(
    pg_url: str, tmp_path: Path
) -> None:
    # A fast SIP 486: ElevenLabs sends call_initiation_failure before its outbound-call answer (with
    # the conversation id) has reached the call. The ring timeout is long, so only the webhook can
    # end the attempt in time.
    stack = await start_call_stack(
        pg_url,
        tmp_path / "logs",
        Play.busy(),
        handling={"provider": "elevenlabs_sip", "max_attempts": 1, "ring_timeout_seconds": 600},
    )
    try:
        assert stack.sims.elevenlabs.webhook_before_answer
        stack.start_worker()
        number = phone(606)
        stack.add_leads([number])
        (call_id,) = await stack.originate([number])
        await stack.until_all([call_id], {"exhausted"}, seconds=60)
        call = await stack.state(call_id)
        assert call["attempts"][0]["outcome"] == "busy"
        # It did beat the answer: the gateway could not match it and stored it, then it was applied.
        (delivery,) = stack.sims.elevenlabs.deliveries
        assert delivery.kind == "call_initiation_failure" and delivery.status == 202, delivery
        stored = await stack.resources.calls("sofa").document(delivery.response["stored"])
        assert stored is not None and stored["call_id"] == call_id
        await stack.slots_match_the_calls_on_the_line()
    finally:
        await stack.close()


async def test_an_integration_that_opts_out_says_so_and_takes_anonymous_events(
    senders: CallStack, caplog: pytest.LogCaptureFixture
) -> None:
    from api.app import create_app
    from happ_integ import CallFlow, Integration
    from happ_integ.provision import prepare_integration

    opened = Integration("open_calls", call_flow=CallFlow(sender_auth="none"))
    with caplog.at_level(logging.WARNING, logger="happ.api"):
        app = create_app(senders.settings, {"open_calls": opened})
    assert any(
        "open_calls accepts call-events and agent-init from anyone" in r.message for r in caplog.records
    )
    async with app.router.lifespan_context(app):
        await prepare_integration(app.state.runtime.resources, opened)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://happ") as http:
            unknown = {"eventType": "call_start", "callId": "c_00000000000000000000"}
            assert (await http.post("/open_calls/webhook/call-events", json=unknown)).status_code == 404
            # The others keep theirs: sofa's routes on this same gateway still refuse strangers.
            sofa = create_app(senders.settings, {"sofa": senders.resources.integration("sofa")})
            async with sofa.router.lifespan_context(sofa):
                transport = httpx.ASGITransport(app=sofa)
                async with httpx.AsyncClient(transport=transport, base_url="http://happ") as other:
                    resp = await other.post("/sofa/webhook/call-events", json=unknown)
                    assert resp.status_code == 401


async def test_a_config_change_reaches_agent_init_on_every_replica_within_a_second(
    senders: CallStack,
) -> None:
    # Each replica keeps the integration's config and secrets in memory (agent-init reads both on
    # every request); PostgreSQL's notification of a change ends that copy on every replica. The
    # agent's `time` is told in the calling hours' zone, so it shows which config was read.
    other = await senders.start_api()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=other, timeout=30) as replica:

        async def hour_on_the_other_replica() -> int:
            resp = await replica.post("/sofa/webhook/agent-init", json={}, headers=HOOK)
            assert resp.status_code == 200
            return int(resp.json()["dynamic_variables"]["time"][:2])

        await hour_on_the_other_replica()  # its copy is read now
        try:
            for zone in ("Asia/Tokyo", "America/New_York", "Asia/Kolkata"):
                hours = {
                    "timezone": zone,
                    "start": "00:00",
                    "end": "23:59",
                    "weekdays": [1, 2, 3, 4, 5, 6, 7],
                }
                resp = await senders.http.put(
                    "/sofa/config/call_handling", json={"calling_hours": hours}, headers=admin
                )
                assert resp.status_code == 200, resp.text
                began = time.monotonic()
                while await hour_on_the_other_replica() != datetime.now(ZoneInfo(zone)).hour:
                    assert time.monotonic() - began < 1.0, f"{zone} not seen by the other replica in 1 s"
                    await asyncio.sleep(0.02)
        finally:
            await senders.http.put(
                "/sofa/config/call_handling",
                json={"concurrency_limit": 3, "calling_hours": None, "postcall_timeout_seconds": 60},
                headers=admin,
            )
