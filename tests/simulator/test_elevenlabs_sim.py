"""The ElevenLabs API peer: key refusal, unknown conversations, what played calls leave there."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from simulator.calls import Play, SimCall
from simulator.elevenlabs import create_elevenlabs_app
from simulator.elevenlabs_state import ElevenLabsState
from simulator.voice import VoiceState, play_call

KEY = {"xi-api-key": "xi-key-1"}


@pytest.fixture
async def env() -> AsyncIterator[tuple[VoiceState, httpx.AsyncClient, list[tuple[str, Any, Any]]]]:
    """A voice state sharing its ElevenLabsState with the API peer, and a gateway that asks that
    peer about the conversation while it handles each webhook (as a recovering gateway would)."""
    eleven = ElevenLabsState(api_key="xi-key-1")
    state = VoiceState(
        call_events_url="/sofa/webhook/call-events",
        agent_init_url="/sofa/webhook/agent-init",
        postcall_url="/sofa/webhook/agent-postcall",
        elevenlabs=eleven,
    )
    api = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_elevenlabs_app(eleven)), base_url="http://xi"
    )
    seen: list[tuple[str, Any, Any]] = []
    app = FastAPI()

    @app.post("/sofa/webhook/{name}")
    async def hook(name: str, request: Request) -> Any:
        body = json.loads(await request.body())
        # agent-init names no conversation (ElevenLabs sends call fields only): use the call's.
        conversation_id = body.get("conversation_id") or body.get("data", {}).get("conversation_id")
        conversation_id = conversation_id or state.calls[-1].conversation_id
        answer = await api.get(f"/v1/convai/conversations/{conversation_id}", headers=KEY)
        seen.append((body.get("eventType") or body.get("type") or name, answer.status_code, answer.json()))
        return {"dynamic_variables": {"client_name": "Іван"}} if name == "agent-init" else {"ok": True}

    gw = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    async with api, gw:
        yield state, gw, seen


def a_call(state: VoiceState, call_id: str = "sofa-1") -> SimCall:
    call = SimCall("va_1", "sip-1", "+380994829573", 3, {"call_id": call_id}, {"call_id": call_id})
    state.calls.append(call)
    return call


async def test_answered_call_is_in_progress_then_done(
    env: tuple[VoiceState, httpx.AsyncClient, list[tuple[str, Any, Any]]],
) -> None:
    state, gw, seen = env
    call = a_call(state)
    sent = await play_call(state, call, Play.answered(45, data_collection={"interested": True}), gw)
    statuses = [(event, code, body.get("status")) for event, code, body in seen]
    assert statuses == [
        ("call_start", 200, "in-progress"),
        ("agent-init", 200, "in-progress"),
        ("call_end", 200, "done"),  # done by the time call_end is handled
        ("post_call_transcription", 200, "done"),
    ]
    live = seen[0][2]
    assert live["transcript"] == [] and live["analysis"] is None and live["has_audio"] is False
    assert live["metadata"]["call_duration_secs"] == 0
    webhook_data = sent[-1].payload["data"]
    assert seen[-1][2] == {**webhook_data, "has_audio": False}
    assert state.elevenlabs.conversations[call.conversation_id] == webhook_data
    done = seen[-1][2]
    assert (done["agent_id"], done["conversation_id"]) == (state.agent_id, call.conversation_id)
    assert done["metadata"]["call_duration_secs"] == 45 and done["transcript"]
    assert done["analysis"]["call_successful"] == "success"
    assert done["analysis"]["transcript_summary"]
    assert done["analysis"]["data_collection_results"]["interested"]["value"] is True
    variables = done["conversation_initiation_client_data"]["dynamic_variables"]
    assert variables["call_id"] == "sofa-1" and variables["client_name"] == "Іван"


async def test_stored_conversation_is_a_copy(
    env: tuple[VoiceState, httpx.AsyncClient, list[tuple[str, Any, Any]]],
) -> None:
    state, gw, _ = env
    call = a_call(state)
    sent = await play_call(state, call, Play.short(2), gw)
    sent[-1].payload["data"]["status"] = "edited"
    assert state.elevenlabs.conversations[call.conversation_id]["status"] == "done"


async def test_postcall_false_leaves_the_result_on_the_api(
    env: tuple[VoiceState, httpx.AsyncClient, list[tuple[str, Any, Any]]],
) -> None:
    state, gw, seen = env
    call = a_call(state)
    sent = await play_call(state, call, Play.short(3, postcall=False), gw)
    assert "post_call_transcription" not in [d.kind for d in sent]
    assert seen[-1][0] == "call_end" and seen[-1][2]["status"] == "done"
    assert seen[-1][2]["analysis"]["call_successful"] == "failure"
    assert seen[-1][2]["metadata"]["call_duration_secs"] == 3


@pytest.mark.parametrize("outcome", [Play.no_answer(), Play.busy(), Play.failed()])
async def test_unanswered_calls_have_no_conversation(
    env: tuple[VoiceState, httpx.AsyncClient, list[tuple[str, Any, Any]]], outcome: Play
) -> None:
    state, gw, seen = env
    await play_call(state, a_call(state), outcome, gw)
    assert [code for _, code, _ in seen] == [404, 404]
    assert seen[0][2]["detail"]["status"] == "conversation_not_found"
    assert state.elevenlabs.conversations == {}


async def test_a_call_replayed_as_unanswered_loses_its_conversation(
    env: tuple[VoiceState, httpx.AsyncClient, list[tuple[str, Any, Any]]],
) -> None:
    state, gw, _ = env
    call = a_call(state)
    await play_call(state, call, Play.answered(5), gw)
    assert call.conversation_id in state.elevenlabs.conversations
    await play_call(state, call, Play.busy(), gw)
    assert state.elevenlabs.conversations == {}


@pytest.mark.parametrize("headers", [{}, {"xi-api-key": "wrong"}, {"Authorization": "Bearer xi-key-1"}])
async def test_api_key_refusal(headers: dict[str, str]) -> None:
    state = ElevenLabsState()
    state.conversations["conv_1"] = {"conversation_id": "conv_1", "status": "done"}
    transport = httpx.ASGITransport(app=create_elevenlabs_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://xi") as api:
        answer = await api.get("/v1/convai/conversations/conv_1", headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
        assert state.requests[-1].path == "/v1/convai/conversations/conv_1"
        ok = await api.get("/v1/convai/conversations/conv_1", headers={"xi-api-key": state.api_key})
        assert ok.json() == {"conversation_id": "conv_1", "status": "done", "has_audio": False}
        assert state.api_key == "sim-elevenlabs-key"


async def test_unknown_conversation_and_failure_injection() -> None:
    state = ElevenLabsState(api_key="k")
    state.conversations["conv_1"] = {"conversation_id": "conv_1", "status": "done"}
    transport = httpx.ASGITransport(app=create_elevenlabs_app(state))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://xi", headers={"xi-api-key": "k"}
    ) as api:
        missing = await api.get("/v1/convai/conversations/conv_nope")
        assert missing.status_code == 404
        assert missing.json()["detail"]["status"] == "conversation_not_found"
        assert "conv_nope" in missing.json()["detail"]["message"]
        state.clear_requests()
        state.fail_next(429, times=2, body={"detail": {"status": "rate_limited"}})
        codes = [(await api.get("/v1/convai/conversations/conv_1")).status_code for _ in range(3)]
        assert codes == [429, 429, 200]
        assert len(state.requests_to("GET", "/v1/convai/conversations/")) == 3
        assert state.requests[0].header("xi-api-key") == "k"
