"""Analysed calls end to end, for sofa (NetHunt) and keycrm (KeyCRM), dialled by the voice
assistant or by ElevenLabs: the simulated model reads each transcript, the CRM gets exactly what
the integration's config maps the outcome to, and a number the CRM does not know still completes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from simulator.calls import Play
from tests.e2e.call_stack import ADMIN, CallStack, phone, start_call_stack

pytestmark = pytest.mark.timeout(300)
INTERESTED = [
    {"role": "agent", "message": "Добрий день! Вас цікавить наш вебінар?", "time_in_call_secs": 0},
    {"role": "user", "message": "Так, цікаво, хочу прийти.", "time_in_call_secs": 4},
]

StartStack = Callable[..., Awaitable[CallStack]]


@pytest.fixture
async def stacks(pg_url: str, tmp_path: Path) -> AsyncIterator[StartStack]:
    started: list[CallStack] = []

    async def start(integration: str, outcome: Play, **handling: Any) -> CallStack:
        stack = await start_call_stack(
            pg_url,
            tmp_path / f"logs-{len(started)}",
            outcome,
            integration=integration,
            handling=handling,
            llm=True,
        )
        started.append(stack)
        stack.start_worker()
        return stack

    yield start
    for stack in started:
        await stack.close()


async def state(stack: CallStack, call_id: str) -> dict[str, Any]:
    resp = await stack.http.get(
        f"/{stack.integration}/calls/{call_id}", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def completed(stack: CallStack, numbers: list[str]) -> list[dict[str, Any]]:
    call_ids = await stack.originate(numbers)
    await stack.until_all(call_ids, {"completed"}, seconds=120)
    return [await state(stack, call_id) for call_id in call_ids]


async def test_sofa_known_and_unknown_numbers(stacks: StartStack) -> None:
    stack = await stacks("sofa", Play.answered(40, talk_seconds=0.2))
    known, unknown = phone(801), phone(802)
    stack.add_leads([known])
    first, second = await completed(stack, [known, unknown])
    # The default simulated transcript ends with "Завтра.": the model hears a callback.
    assert first["analysis"]["outcome"] == "callback" and first["analysis"]["source"] == "llm"
    record = stack.records[known]
    assert stack.sims.nethunt.records[record].fields["Status"] == "Call back"
    assert [stack.writes_to(record, k) for k in ("update-record", "create-call-log", "create-comment")] == [
        1,
        1,
        1,
    ]
    (comment,) = [c for c in stack.sims.nethunt.comments if c["recordId"] == record]
    assert first["analysis"]["summary"] in comment["text"]
    # The callback is a new call, linked to the first and waiting for the time the client named.
    follow_up = await state(stack, first["callback_call_id"])
    assert follow_up["previous_call_id"] == first["call_id"] and follow_up["status"] == "scheduled"
    assert follow_up["next_attempt_at"] == first["analysis"]["callback_at"].replace("+00:00", "Z")
    # A number NetHunt does not know: the call completes, nothing is written, the log says why.
    assert second["record_id"] is None and second["result"]["written"] == []
    deadline = time.monotonic() + 10
    while "No CRM record for this number" not in stack.worker_output():
        assert time.monotonic() < deadline, stack.worker_logs()
        await asyncio.sleep(0.2)


async def test_keycrm_moves_the_card_to_the_mapped_status_once(stacks: StartStack) -> None:
    stack = await stacks("keycrm", Play.answered(40, talk_seconds=0.2, transcript=INTERESTED))
    known, unknown = phone(811), phone(812)
    stack.add_leads([known])
    first, second = await completed(stack, [known, unknown])
    assert first["analysis"]["outcome"] == "interested"
    card = stack.sims.keycrm.cards[int(stack.records[known])]
    assert card["status_id"] == 102  # the keycrm status_map's default for interested
    updates = stack.sims.keycrm.requests_to("PUT", f"/v1/pipelines/cards/{stack.records[known]}")
    assert len(updates) == 1 and first["analysis"]["summary"] in updates[0].json["note"]
    assert second["record_id"] is None and second["status"] == "completed"


async def test_an_elevenlabs_dialled_call_updates_the_crm_the_same_way(stacks: StartStack) -> None:
    stack = await stacks(
        "sofa", Play.answered(40, talk_seconds=0.2, transcript=INTERESTED), provider="elevenlabs_sip"
    )
    known = phone(821)
    stack.add_leads([known])
    (call,) = await completed(stack, [known])
    assert call["analysis"]["outcome"] == "interested" and call["attempts"][0]["outcome"] == "answered"
    assert stack.sims.elevenlabs.outbound_calls and not stack.sims.voice.calls  # ElevenLabs dialled
    record = stack.records[known]
    assert stack.sims.nethunt.records[record].fields["Status"] == "Interested"
    assert [stack.writes_to(record, k) for k in ("update-record", "create-call-log", "create-comment")] == [
        1,
        1,
        1,
    ]
    assert stack.sims.elevenlabs.max_in_flight <= 3
