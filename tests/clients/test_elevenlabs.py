"""ElevenLabsApi against the ElevenLabs simulator: the path, `xi-api-key`, the conversation model
(the same one the post-call webhook's `data` reads into) and the error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from happ_integ.clients.elevenlabs import Conversation, ElevenLabsApi
from happ_integ.errors import NotFound, Unauthorized, UpstreamError, ValidationFailed
from simulator.calls import Play
from simulator.elevenlabs import create_elevenlabs_app
from simulator.elevenlabs_state import ElevenLabsState
from simulator.voice import VoiceState, create_voice_app, play_call

BASE = "http://elevenlabs.test"
KEY = "xi-key-0123456789"


@dataclass
class Env:
    state: ElevenLabsState
    api: ElevenLabsApi
    http: httpx.AsyncClient


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    state = ElevenLabsState(api_key=KEY)
    transport = httpx.ASGITransport(app=create_elevenlabs_app(state))
    async with httpx.AsyncClient(transport=transport) as http:
        yield Env(state, ElevenLabsApi(http, BASE, KEY), http)


def postcall_receiver(received: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/postcall")
    async def postcall(request: Request) -> dict[str, bool]:
        received.append(await request.json())
        return {"ok": True}

    return app


async def test_conversation_of_a_played_call(env: Env) -> None:
    received: list[dict[str, Any]] = []
    voice = VoiceState(token="va-token", postcall_url="/postcall", elevenlabs=env.state)
    saas = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_voice_app(voice)), base_url="http://va")
    gateway = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=postcall_receiver(received)), base_url="http://gw"
    )
    async with saas, gateway:
        body = {
            "phone_number": "+380994829573",
            "call_id": "sofa-1",
            "dynamic_variables": {"client_name": "Іван"},
        }
        assert (
            await saas.post("/sip-1/originate/", json=body, headers={"Authorization": "Bearer va-token"})
        ).is_success
        call = voice.calls[-1]
        outcome = Play.answered(45, data_collection={"callback_time": "завтра"})
        await play_call(voice, call, outcome, gateway)

    conversation = await env.api.get_conversation(call.conversation_id)
    sent = env.state.requests[-1]
    assert (sent.method, sent.path) == ("GET", f"/v1/convai/conversations/{call.conversation_id}")
    assert sent.header("xi-api-key") == KEY
    assert conversation.conversation_id == call.conversation_id and conversation.agent_id == voice.agent_id
    assert conversation.done and conversation.status == "done"
    assert conversation.duration_seconds == 45.0
    assert conversation.dynamic_variables["client_name"] == "Іван"
    assert conversation.dynamic_variables["system__conversation_id"] == call.conversation_id
    assert conversation.call_successful == "success"
    assert conversation.transcript_summary == outcome.summary
    assert conversation.data_collection_results["callback_time"]["value"] == "завтра"
    assert conversation.transcript and conversation.transcript[0]["role"] == "agent"
    assert conversation.model_extra == {"has_audio": False}  # keys the model does not name are kept

    # The webhook's `data` is the same object: one model reads both, to the same values.
    webhook = Conversation.from_webhook_data(received[-1]["data"])
    assert webhook.model_dump() == conversation.model_dump(exclude={"has_audio"})


async def test_live_conversation_has_no_analysis(env: Env) -> None:
    env.state.store(
        {"conversation_id": "conv_live", "status": "in-progress", "transcript": None, "metadata": None}
    )
    live = await env.api.get_conversation("conv_live")
    assert not live.done and live.status == "in-progress"
    assert (live.transcript, live.metadata, live.analysis) == ([], {}, None)
    assert live.duration_seconds == 0.0 and live.dynamic_variables == {}
    assert live.call_successful is None and live.transcript_summary is None
    assert live.data_collection_results == {} and live.agent_id is None


async def test_unknown_conversation_is_not_found(env: Env) -> None:
    with pytest.raises(NotFound) as caught:
        await env.api.get_conversation("conv_missing")
    assert caught.value.details["status"] == 404 and "conversation_not_found" in caught.value.message
    # An id with "/" or "?" stays one path segment instead of reaching another endpoint.
    with pytest.raises(NotFound):
        await env.api.get_conversation("conv/../x?y=1")
    assert env.state.requests[-1].path == "/v1/convai/conversations/conv/../x?y=1"
    assert env.state.requests[-1].query == {}
    with pytest.raises(ValidationFailed):
        await env.api.get_conversation(" ")


async def test_wrong_key_is_unauthorized_without_leaking_it(env: Env) -> None:
    env.state.store({"conversation_id": "conv_1", "status": "done"})
    with pytest.raises(Unauthorized) as caught:
        await ElevenLabsApi(env.http, BASE, "wrong-xi-key-987654").get_conversation("conv_1")
    assert "wrong-xi-key-987654" not in str(caught.value)
    assert "wrong-xi-key-987654" not in repr(caught.value.details)
    assert caught.value.details["service"] == "ElevenLabs"


async def test_server_errors_are_retryable(env: Env) -> None:
    env.state.store({"conversation_id": "conv_1", "status": "processing"})
    env.state.fail_next(503)
    with pytest.raises(UpstreamError) as caught:
        await env.api.get_conversation("conv_1")
    assert caught.value.retryable and caught.value.details["status"] == 503
    assert (await env.api.get_conversation("conv_1")).status == "processing"


async def test_timeout_and_odd_bodies_are_upstream_errors() -> None:
    answers = iter([None, httpx.Response(200, json=[{"conversation_id": "c"}])])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if answer is None:
            raise httpx.ReadTimeout("slow", request=request)
        return answer

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = ElevenLabsApi(http, "https://api.elevenlabs.test/", KEY, timeout=0.5)
        with pytest.raises(UpstreamError, match="ElevenLabs timed out on GET /v1/convai/conversations/c1"):
            await api.get_conversation("c1")
        with pytest.raises(UpstreamError, match="not a conversation"):
            await api.get_conversation("c1")


def test_from_webhook_data_names_bad_fields_not_values() -> None:
    with pytest.raises(ValidationFailed) as caught:
        Conversation.from_webhook_data({"conversation_id": "c", "transcript": "+380994829573"})
    assert "status" in caught.value.message and "transcript" in caught.value.message
    assert "380994829573" not in caught.value.message
    odd = Conversation.from_webhook_data(
        {"conversation_id": "c", "status": "done", "metadata": {"call_duration_secs": "12"}}
    )
    assert odd.done and odd.duration_seconds == 12.0
