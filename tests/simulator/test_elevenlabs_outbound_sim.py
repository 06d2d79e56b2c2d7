"""The ElevenLabs peer's own outbound calls: both endpoints, refusal and validation, the signed
webhook a played call sends (with the request's dynamic variables), busy/no-answer failures,
webhook-less calls and the in-flight record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from simulator import verify_elevenlabs
from simulator.calls import Play
from simulator.elevenlabs import create_elevenlabs_app
from simulator.elevenlabs_calls import play_outbound
from simulator.elevenlabs_state import ElevenLabsState

KEY = {"xi-api-key": "xi-key-1"}
SIP = "/v1/convai/sip-trunk/outbound-call"
TWILIO = "/v1/convai/twilio/outbound-call"


@dataclass
class Env:
    state: ElevenLabsState
    api: httpx.AsyncClient
    # (headers, raw body, in_flight and the conversation's API status code while it was handled)
    hits: list[tuple[dict[str, str], bytes, int, int]] = field(default_factory=list)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    state = ElevenLabsState(
        api_key="xi-key-1", postcall_url="/sofa/webhook/agent-postcall", webhook_secret="whs"
    )
    api = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_elevenlabs_app(state)), base_url="http://xi"
    )
    env = Env(state, api)
    gateway = FastAPI()

    @gateway.post("/sofa/webhook/agent-postcall")
    async def postcall(request: Request) -> dict[str, bool]:
        raw = await request.body()
        conversation_id = json.loads(raw)["data"]["conversation_id"]
        looked_up = await api.get(f"/v1/convai/conversations/{conversation_id}", headers=KEY)
        env.hits.append((dict(request.headers), raw, state.in_flight, looked_up.status_code))
        return {"ok": True}

    gw = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw")
    state.webhook_http = gw
    async with api, gw:
        yield env


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "agent_id": "agent_sim",
        "agent_phone_number_id": "phnum_sim",
        "to_number": "+380994829573",
        "conversation_initiation_client_data": {
            "dynamic_variables": {"call_id": "sofa-1", "client_name": "Іван"}
        },
        **overrides,
    }


@pytest.mark.parametrize(
    ("path", "sid_key", "prefix"), [(SIP, "sipCallId", "sip_"), (TWILIO, "callSid", "CA")]
)
async def test_both_endpoints_answer_and_record_the_call(
    env: Env, path: str, sid_key: str, prefix: str
) -> None:
    answer = await env.api.post(path, json=body(), headers=KEY)
    assert answer.status_code == 200
    data = answer.json()
    assert set(data) == {"success", "message", "conversation_id", sid_key}
    assert (data["success"], data["message"]) == (True, "Success")
    assert data["conversation_id"].startswith("conv_") and data[sid_key].startswith(prefix)
    [record] = env.state.outbound_calls
    assert record.body == body() and record.via == ("sip" if path == SIP else "twilio")
    assert (record.conversation_id, record.call_sid) == (data["conversation_id"], data[sid_key])
    assert record.call.call_id == "sofa-1" and env.state.outbound("sofa-1") is record
    # Without `play` the call is never played: it stays in flight and no webhook goes out.
    assert (env.state.in_flight, env.state.max_in_flight) == (1, 1)
    await env.state.settle()
    assert env.hits == [] and env.state.requests[-1].path == path


@pytest.mark.parametrize("path", [SIP, TWILIO])
async def test_key_and_fields_are_checked(env: Env, path: str) -> None:
    refused = await env.api.post(path, json=body(), headers={"xi-api-key": "wrong"})
    assert refused.status_code == 401 and refused.json()["detail"]["status"] == "invalid_api_key"
    missing = await env.api.post(path, json={"agent_id": "agent_sim", "to_number": ""}, headers=KEY)
    assert missing.status_code == 422
    assert [d["loc"] for d in missing.json()["detail"]] == [
        ["body", "agent_phone_number_id"],
        ["body", "to_number"],
    ]
    garbage = await env.api.post(path, content=b"[1]", headers=KEY)
    assert garbage.status_code == 422 and len(garbage.json()["detail"]) == 3
    assert env.state.outbound_calls == [] and env.state.in_flight == 0


async def test_refusal_and_unknown_ids(env: Env) -> None:
    env.state.refuse_next("Failed to initiate call: busy trunk")
    refused = (await env.api.post(TWILIO, json=body(), headers=KEY)).json()
    assert refused == {
        "success": False,
        "message": "Failed to initiate call: busy trunk",
        "conversation_id": None,
        "callSid": None,
    }
    assert env.state.outbound_calls == [] and env.state.in_flight == 0
    env.state.known_agents, env.state.known_phone_numbers = {"agent_sim"}, {"phnum_sim"}
    unknown = await env.api.post(SIP, json=body(agent_id="agent_x"), headers=KEY)
    assert unknown.status_code == 404 and unknown.json()["detail"]["status"] == "agent_not_found"
    unknown = await env.api.post(SIP, json=body(agent_phone_number_id="phnum_x"), headers=KEY)
    assert unknown.status_code == 404 and unknown.json()["detail"]["status"] == "phone_number_not_found"
    assert (await env.api.post(SIP, json=body(), headers=KEY)).json()["success"] is True


@pytest.mark.parametrize(("path", "phone_type"), [(SIP, "sip_trunking"), (TWILIO, "twilio")])
async def test_an_answered_call_sends_a_signed_transcription(env: Env, path: str, phone_type: str) -> None:
    env.state.play = Play.answered(40, data_collection={"webinar": "yes"})
    data = (await env.api.post(path, json=body(), headers=KEY)).json()
    await env.state.settle()
    [(headers, raw, flying, looked_up)] = env.hits
    assert verify_elevenlabs("whs", raw, headers["elevenlabs-signature"])
    assert not verify_elevenlabs("other", raw, headers["elevenlabs-signature"])
    payload = json.loads(raw)
    assert payload["type"] == "post_call_transcription"
    conversation = payload["data"]
    assert conversation["conversation_id"] == data["conversation_id"] and conversation["status"] == "done"
    assert conversation["agent_id"] == "agent_sim" and conversation["metadata"]["call_duration_secs"] == 40
    assert conversation["metadata"]["phone_call"]["type"] == phone_type
    assert conversation["analysis"]["data_collection_results"]["webinar"]["value"] == "yes"
    variables = conversation["conversation_initiation_client_data"]["dynamic_variables"]
    assert (variables["call_id"], variables["client_name"]) == ("sofa-1", "Іван")
    assert variables["system__call_sid"] == env.state.outbound_calls[-1].call_sid
    # While the webhook is handled the call has ended and its conversation is done on the API.
    assert (flying, looked_up) == (0, 200)
    stored = (await env.api.get(f"/v1/convai/conversations/{data['conversation_id']}", headers=KEY)).json()
    assert stored == {**conversation, "has_audio": False}
    assert env.state.deliveries[-1].status == 200 and env.state.errors == []


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [(Play.busy(), "busy"), (Play.no_answer(), "no-answer"), (Play.failed(), "unknown")],
)
@pytest.mark.parametrize("path", [SIP, TWILIO])
async def test_unanswered_calls_send_an_initiation_failure(
    env: Env, outcome: Play, reason: str, path: str
) -> None:
    env.state.play = outcome
    data = (await env.api.post(path, json=body(), headers=KEY)).json()
    await env.state.settle()
    [(headers, raw, flying, looked_up)] = env.hits
    assert verify_elevenlabs("whs", raw, headers["elevenlabs-signature"])
    payload = json.loads(raw)
    assert payload["type"] == "call_initiation_failure"
    assert (payload["data"]["conversation_id"], payload["data"]["failure_reason"]) == (
        data["conversation_id"],
        reason,
    )
    assert payload["data"]["metadata"]["type"] == ("sip" if path == SIP else "twilio")
    assert (flying, looked_up) == (0, 404) and env.state.conversations == {}


async def test_postcall_false_sends_nothing_but_the_call_still_ends(env: Env) -> None:
    env.state.play = Play.short(3, postcall=False)
    data = (await env.api.post(SIP, json=body(), headers=KEY)).json()
    env.state.play = Play.busy(postcall=False)
    await env.api.post(TWILIO, json=body(), headers=KEY)
    await env.state.settle()
    assert env.hits == [] and env.state.in_flight == 0 and env.state.max_in_flight <= 2
    conversation = env.state.conversations[data["conversation_id"]]  # recoverable from the API
    assert conversation["status"] == "done" and conversation["metadata"]["call_duration_secs"] == 3
    assert list(env.state.conversations) == [data["conversation_id"]]


async def test_in_flight_tracking_and_a_live_conversation(env: Env) -> None:
    ticks = iter(range(100))
    env.state.monotonic = lambda: float(next(ticks))
    env.state.play = Play.answered(30, ring_seconds=0.02, talk_seconds=0.5)
    ids = [(await env.api.post(SIP, json=body(), headers=KEY)).json()["conversation_id"] for _ in range(3)]
    assert (env.state.in_flight, env.state.max_in_flight) == (3, 3)
    await asyncio.sleep(0.15)  # ringing is over, talking is not: live on the API
    live = (await env.api.get(f"/v1/convai/conversations/{ids[0]}", headers=KEY)).json()
    assert live["status"] == "in-progress" and live["transcript"] == [] and live["analysis"] is None
    await env.state.settle()
    assert env.state.in_flight == 0 and len(env.hits) == 3
    assert [count for _, count in env.state.in_flight_timeline] == [1, 2, 3, 2, 1, 0]
    assert [t for t, _ in env.state.in_flight_timeline] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    env.state.reset_in_flight()
    assert (env.state.in_flight, env.state.max_in_flight, env.state.in_flight_timeline) == (0, 0, [])


async def test_replay_by_hand_and_unreachable_webhooks(env: Env) -> None:
    await env.api.post(TWILIO, json=body(), headers=KEY)
    record, gw = env.state.outbound("sofa-1"), env.state.webhook_http
    assert gw is not None
    sent = await play_outbound(env.state, record, Play.answered(5), gw)
    assert [d.kind for d in sent] == ["post_call_transcription"] and env.state.in_flight == 0
    await play_outbound(env.state, record, Play.busy(), gw)
    assert env.state.conversations == {}  # replayed as unanswered: no conversation any more
    env.state.play, env.state.webhook_http = Play.busy(), None
    env.state.postcall_url = "http://127.0.0.1:9/nowhere"  # nothing listens on the discard port
    await env.api.post(SIP, json=body(), headers=KEY)
    await env.state.settle()
    assert len(env.state.errors) == 1 and "ConnectError" in env.state.errors[0]
    assert env.state.in_flight == 0  # the call ended even though its webhook was lost
