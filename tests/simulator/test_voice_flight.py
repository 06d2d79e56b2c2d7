"""The voice simulator's call ids, in-flight record, ring/talk delays and postcall-less calls."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from simulator.calls import Play, SimCall
from simulator.voice import VoiceState, create_voice_app, play_call

TOKEN = {"Authorization": "Bearer tok-1"}


@dataclass
class Gateway:
    """A stand-in receiver: stamps each webhook, runs `on_hit` before answering, optionally slowly."""

    state: VoiceState
    hits: list[tuple[str, str, float, int]] = field(
        default_factory=list
    )  # (hook, eventType, when, in_flight)
    on_hit: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
    answer_delay: float = 0.0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/sofa/webhook/{name}")
        async def hook(name: str, request: Request) -> Any:
            body = json.loads(await request.body())
            self.hits.append((name, body.get("eventType", ""), time.monotonic(), self.state.in_flight))
            if self.on_hit is not None:
                await self.on_hit(name, body)
            await asyncio.sleep(self.answer_delay)
            return {"dynamic_variables": {}} if name == "agent-init" else {"success": True}

        return app


@pytest.fixture
async def env() -> AsyncIterator[tuple[VoiceState, Gateway, httpx.AsyncClient, httpx.AsyncClient]]:
    ticks = iter(range(1000))
    state = VoiceState(
        token="tok-1",
        call_events_url="/sofa/webhook/call-events",
        agent_init_url="/sofa/webhook/agent-init",
        postcall_url="/sofa/webhook/agent-postcall",
        monotonic=lambda: float(next(ticks)),
    )
    gateway = Gateway(state)
    saas = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_voice_app(state)), base_url="http://va")
    gw = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app()), base_url="http://gw")
    async with saas, gw:
        yield state, gateway, saas, gw


async def originate(saas: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await saas.post("/sip-1/originate/", json={"phone_number": "+380994829573", **body}, headers=TOKEN)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"call_id": "top", "metadata": {"call_id": "meta"}, "dynamic_variables": {"call_id": "dyn"}}, "top"),
        ({"call_id": "", "metadata": {"call_id": "meta"}, "dynamic_variables": {"call_id": "dyn"}}, "meta"),
        ({"metadata": {"other": 1}, "dynamic_variables": {"call_id": "dyn"}}, "dyn"),
        ({"call_id": 42}, "42"),
        ({}, None),
    ],
)
async def test_call_id_preference(
    env: tuple[VoiceState, Gateway, httpx.AsyncClient, httpx.AsyncClient],
    body: dict[str, Any],
    expected: str | None,
) -> None:
    state, _, saas, gw = env
    answer = await originate(saas, **body)
    call = state.calls[-1]
    assert call.call_id == (expected or answer.json()["callId"]) and state.call(call.call_id) is call
    sent = await play_call(state, call, Play.answered(5), gw)
    assert {d.payload["callId"] for d in sent if d.kind in ("call_start", "call_end")} == {call.call_id}


async def test_in_flight_from_originate_until_call_end_is_sent(
    env: tuple[VoiceState, Gateway, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    state, gateway, saas, gw = env
    gateway.answer_delay = 0.05  # a slow gateway: its call_end answer comes late
    for i in range(3):
        await originate(saas, call_id=f"c{i}")
    assert (state.in_flight, state.max_in_flight) == (3, 3)
    state.fail_next(503)
    assert (await originate(saas, call_id="refused")).status_code == 503
    assert state.in_flight == 3  # a refused originate never starts a call
    await play_call(state, state.call("c0"), Play.answered(5), gw)
    seen = {(hook, event): flying for hook, event, _, flying in gateway.hits}
    assert seen[("call-events", "call_start")] == 3
    assert seen[("call-events", "call_end")] == 2  # already ended while its call_end is handled
    assert seen[("agent-postcall", "")] == 2
    await play_call(state, state.call("c1"), Play.short(2, postcall=False), gw)
    await play_call(state, state.call("c1"), Play.busy(), gw)  # a replay ends nothing else
    assert (state.in_flight, state.max_in_flight) == (1, 3)  # c2 was never played: still in flight
    await play_call(state, state.call("c2"), Play.no_answer(), gw)
    assert gateway.hits[-2][3] == 0 and state.in_flight == 0
    assert state.in_flight_timeline == [(0.0, 1), (1.0, 2), (2.0, 3), (3.0, 2), (4.0, 1), (5.0, 0)]
    state.reset_in_flight()
    assert (state.in_flight, state.max_in_flight, state.in_flight_timeline) == (0, 0, [])


async def test_calls_ended_without_call_events_url_still_leave_flight(
    env: tuple[VoiceState, Gateway, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    state, _, saas, gw = env
    state.call_events_url = None
    await originate(saas, call_id="a")
    await originate(saas, call_id="b")
    await play_call(state, state.call("a"), Play.answered(5), gw)
    await play_call(state, state.call("b"), Play.failed(), gw)
    assert state.in_flight == 0 and state.max_in_flight == 2


async def test_overlap_shows_in_max_in_flight(
    env: tuple[VoiceState, Gateway, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    state, gateway, saas, gw = env
    gateway.answer_delay = 0.0

    async def originate_next_on_call_end(hook: str, body: dict[str, Any]) -> None:
        # The gateway starts the next call as soon as one ends: one at a time, never two.
        if body.get("eventType") == "call_end" and len(state.calls) < 3:
            await originate(saas, call_id=f"s{len(state.calls)}")

    gateway.on_hit = originate_next_on_call_end
    await originate(saas, call_id="s0")
    for i in range(3):
        await play_call(state, state.call(f"s{i}"), Play.answered(5, talk_seconds=0.01), gw)
    assert len(state.calls) == 3 and state.max_in_flight == 1
    state.reset_in_flight()
    for i in range(3, 6):
        await originate(saas, call_id=f"p{i}")
    talk = Play.answered(5, talk_seconds=0.05)
    await asyncio.gather(*(play_call(state, state.call(f"p{i}"), talk, gw) for i in range(3, 6)))
    assert state.max_in_flight == 3 and state.in_flight == 0


async def test_ring_and_talk_seconds_wait_before_start_and_end(
    env: tuple[VoiceState, Gateway, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    state, gateway, saas, gw = env
    await originate(saas, call_id="slow")
    began = time.monotonic()
    outcome = Play.answered(30, ring_seconds=0.1, talk_seconds=0.2)
    sent = await play_call(state, state.call("slow"), outcome, gw, pause=0.01)
    assert [d.kind for d in sent] == ["call_start", "agent_init", "call_end", "post_call_transcription"]
    start, init, end = (hit[2] for hit in gateway.hits[:3])
    assert start - began >= 0.1 and end - init >= 0.2 + 0.01
    assert sent[2].payload["duration"] == 30  # the reported duration is the outcome's, not the wait
    gateway.hits.clear()
    began = time.monotonic()
    await play_call(state, state.call("slow"), Play.busy(ring_seconds=0.1), gw)
    assert gateway.hits[0][1] == "call_end" and gateway.hits[0][2] - began >= 0.1
    assert Play.answered().ring_seconds == Play.answered().talk_seconds == 0


async def test_postcall_false_sends_no_transcription_but_records_the_conversation(
    env: tuple[VoiceState, Gateway, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    state, gateway, saas, gw = env
    await originate(saas, call_id="quiet")
    call = state.call("quiet")
    sent = await play_call(state, call, Play.answered(20, postcall=False), gw)
    assert [d.kind for d in sent] == ["call_start", "agent_init", "call_end"]
    assert [hit[0] for hit in gateway.hits] == ["call-events", "agent-init", "call-events"]
    conversation = state.elevenlabs.conversations[call.conversation_id]
    assert conversation["status"] == "done" and conversation["metadata"]["call_duration_secs"] == 20
    assert conversation["analysis"]["call_successful"] == "success"


def test_sim_call_defaults() -> None:
    call = SimCall("va_1", "sip", "+1", None, {}, {})
    assert call.call_id == "va_1" and call.requested_call_id is None
    assert SimCall("va_2", "sip", "+1", None, {}, {}, requested_call_id="x").call_id == "x"
