"""The voice-SaaS simulator: ElevenLabs signing, originate auth, and played calls' webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from simulator import sign_elevenlabs, verify_elevenlabs
from simulator.calls import Play
from simulator.voice import VoiceState, create_voice_app, play_call

SECRET = "wsec_test_secret"
BODY = b'{"type":"post_call_transcription","data":{"conversation_id":"c1"}}'


def standard_check(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does per ElevenLabs' docs, written independently of the simulator."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    digest = hmac.new(secret.encode(), f"{parts['t']}.{body.decode()}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(parts["v0"], digest)


def test_signature_verifies_with_a_standard_hmac_check() -> None:
    header = sign_elevenlabs(SECRET, BODY, 1_700_000_000)
    assert header.startswith("t=1700000000,v0=") and len(header.split("v0=")[1]) == 64
    assert standard_check(SECRET, BODY, header)
    assert verify_elevenlabs(SECRET, BODY, header, now=1_700_000_000 + 1799)


def test_signature_fails_with_wrong_secret_tampered_body_or_age() -> None:
    header = sign_elevenlabs(SECRET, BODY, 1_700_000_000)
    assert not standard_check("other-secret", BODY, header)
    assert not standard_check(SECRET, BODY.replace(b"c1", b"c2"), header)
    now = 1_700_000_000
    assert not verify_elevenlabs("other-secret", BODY, header, now=now)
    assert not verify_elevenlabs(SECRET, BODY + b" ", header, now=now)
    assert not verify_elevenlabs(SECRET, BODY, header, now=now + 1801)
    for bad in (None, "", "v0=abc", "t=x,v0=abc", f"t={now}"):
        assert not verify_elevenlabs(SECRET, BODY, bad, now=now)


@dataclass
class Receiver:
    """A stand-in gateway that keeps every webhook and answers agent-init."""

    hits: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/sofa/webhook/{name}")
        async def hook(name: str, request: Request) -> Any:
            self.hits.append((name, dict(request.headers), await request.body()))
            if name == "agent-init":
                return {
                    "type": "conversation_initiation_client_data",
                    "dynamic_variables": {"client_name": "Іван"},
                }
            return {"success": True}

        return app


@pytest.fixture
async def setup() -> AsyncIterator[tuple[VoiceState, Receiver, httpx.AsyncClient, httpx.AsyncClient]]:
    state = VoiceState(
        token="tok-1",
        webhook_secret=SECRET,
        call_events_url="/sofa/webhook/call-events",
        agent_init_url="/sofa/webhook/agent-init",
        postcall_url="/sofa/webhook/agent-postcall",
        webhook_headers={"Authorization": "Bearer hook-token"},
        clock=lambda: 1_800_000_000.0,
    )
    receiver = Receiver()
    saas = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_voice_app(state)), base_url="http://va")
    gateway = httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app()), base_url="http://gw")
    async with saas, gateway:
        body = {
            "phone_number": "+380994829573",
            "assistant_id": 3,
            "dynamic_variables": {"call_id": "sofa-1"},
            "metadata": {"call_id": "sofa-1"},
        }
        answer = await saas.post("/sip-1/originate/", json=body, headers={"Authorization": "Bearer tok-1"})
        assert answer.status_code == 200 and answer.json()["callId"].startswith("va_")
        yield state, receiver, saas, gateway


async def test_originate_refuses_a_wrong_token(setup: tuple[VoiceState, Receiver, Any, Any]) -> None:
    state, _, saas, _ = setup
    answer = await saas.post(
        "/sip-1/originate/", json={"phone_number": "+1"}, headers={"Authorization": "Bearer x"}
    )
    assert answer.status_code == 401 and len(state.calls) == 1


async def test_answered_call(setup: tuple[VoiceState, Receiver, Any, httpx.AsyncClient]) -> None:
    state, receiver, _, gateway = setup
    call = state.call("sofa-1")
    outcome = Play.answered(45, data_collection={"interested": True})
    sent = await play_call(state, call, outcome, gateway)
    assert [d.kind for d in sent] == ["call_start", "agent_init", "call_end", "post_call_transcription"]
    assert [h[0] for h in receiver.hits] == ["call-events", "agent-init", "call-events", "agent-postcall"]
    assert all(d.status == 200 for d in sent)
    start, init, end = (json.loads(h[2]) for h in receiver.hits[:3])
    assert start == {
        "eventType": "call_start",
        "callId": "sofa-1",
        "conversation_id": call.conversation_id,
        "metadata": {"call_id": "sofa-1", "provider_call_id": call.provider_call_id},
    }
    assert receiver.hits[0][1]["authorization"] == "Bearer hook-token"
    assert init["phone_number"] == "+380994829573" and init["call_id"] == "sofa-1" and init["agent_id"]
    assert (end["eventType"], end["duration"]) == ("call_end", 45)
    _, headers, raw = receiver.hits[3]
    assert "authorization" not in headers
    assert standard_check(SECRET, raw, headers["elevenlabs-signature"])
    assert headers["elevenlabs-signature"].startswith("t=1800000000,")
    envelope = json.loads(raw)
    assert (envelope["type"], envelope["event_timestamp"]) == ("post_call_transcription", 1_800_000_000)
    data = envelope["data"]
    assert data["metadata"]["call_duration_secs"] == 45 and data["status"] == "done"
    assert {t["role"] for t in data["transcript"]} == {"agent", "user"}
    assert data["analysis"]["call_successful"] == "success"
    assert data["analysis"]["data_collection_results"]["interested"]["value"] is True
    variables = data["conversation_initiation_client_data"]["dynamic_variables"]
    assert variables["call_id"] == "sofa-1" and variables["client_name"] == "Іван"
    assert variables["system__conversation_id"] == call.conversation_id


async def test_short_call(setup: tuple[VoiceState, Receiver, Any, httpx.AsyncClient]) -> None:
    state, _, _, gateway = setup
    sent = await play_call(state, state.calls[0], Play.short(2, postcall=False), gateway)
    assert [d.kind for d in sent] == ["call_start", "agent_init", "call_end"]
    assert sent[-1].payload["duration"] == 2
    with_postcall = await play_call(state, state.calls[0], Play.short(3), gateway)
    assert with_postcall[-1].payload["data"]["analysis"]["call_successful"] == "failure"


@pytest.mark.parametrize(
    ("outcome", "status", "reason"),
    [
        (Play.no_answer(), "no_answer", "no-answer"),
        (Play.busy(), "busy", "busy"),
        (Play.failed(), "failed", "unknown"),
    ],
)
async def test_unanswered_calls(
    setup: tuple[VoiceState, Receiver, Any, httpx.AsyncClient], outcome: Play, status: str, reason: str
) -> None:
    state, receiver, _, gateway = setup
    sent = await play_call(state, state.calls[0], outcome, gateway)
    assert [d.kind for d in sent] == ["call_end", "call_initiation_failure"]
    end = sent[0].payload
    assert (end["duration"], end["metadata"]["status"], end["callId"]) == (0, status, "sofa-1")
    _, headers, raw = receiver.hits[-1]
    assert standard_check(SECRET, raw, headers["elevenlabs-signature"])
    failure = json.loads(raw)
    assert failure["type"] == "call_initiation_failure" and failure["data"]["failure_reason"] == reason


async def test_unset_urls_are_skipped(setup: tuple[VoiceState, Receiver, Any, httpx.AsyncClient]) -> None:
    state, _, _, gateway = setup
    state.agent_init_url = state.call_events_url = None
    sent = await play_call(state, state.calls[0], Play.answered(10), gateway)
    assert [d.kind for d in sent] == ["post_call_transcription"]
    assert state.deliveries == sent
