"""All peers on one app: the three clients through their prefixes, and dev-mode auto-play."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from happ_integ.clients.elevenlabs import ElevenLabsApi
from happ_integ.clients.happ_voice import HappVoiceApi
from happ_integ.clients.keycrm import KeyCrmApi
from happ_integ.clients.llm import LlmApi
from happ_integ.clients.nethunt import NetHuntApi
from simulator import verify_elevenlabs
from simulator.app import DEMO_PHONE, SimulatorStates, create_simulator_app, main
from simulator.calls import Play
from simulator.voice import play_call


def transport(states: SimulatorStates) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_simulator_app(states))


async def test_clients_work_through_the_prefixes() -> None:
    states = SimulatorStates.demo()
    async with httpx.AsyncClient(transport=transport(states), base_url="http://sim") as http:
        index = (await http.get("/")).json()
        assert index == {
            "nethunt": "http://sim/nethunt/api/v1/zapier",
            "keycrm": "http://sim/keycrm/v1",
            "voice": "http://sim/voice",
            "elevenlabs": "http://sim/elevenlabs",
            "llm": "http://sim/llm/v1",
        }
        nethunt = NetHuntApi(http, index["nethunt"], states.nethunt.email, states.nethunt.api_key)
        [record] = await nethunt.search_records("leads", f'"Phone":{DEMO_PHONE}')
        assert record.fields["Company"] == "ТОВ Компанія"
        assert states.nethunt.requests[-1].path == "/api/v1/zapier/searches/find-record/leads"
        keycrm = KeyCrmApi(http, index["keycrm"], states.keycrm.api_key)
        [card] = await keycrm.find_cards_by_phone(DEMO_PHONE)
        assert card.contact and card.contact.full_name == "Іван Петренко"
        assert states.keycrm.requests[-1].path == "/v1/pipelines/cards"
        voice = HappVoiceApi(http, index["voice"], states.voice.token)
        result = await voice.originate("sip-1", DEMO_PHONE, 1, call_id="sofa-9")
        assert states.voice.calls[-1].provider_call_id == result.provider_call_id
        assert states.voice.requests[-1].path == "/sip-1/originate/"
        listed = (await http.get("/voice/_sim/calls")).json()
        assert listed["calls"][0]["call_id"] == "sofa-9"
        assert (await http.post("/voice/_sim/calls/nope/play")).status_code == 404
        bad = await http.post("/voice/_sim/calls/sofa-9/play", json={"outcome": "weird"})
        assert bad.status_code == 422
        bad = await http.post("/voice/_sim/calls/sofa-9/play", json={"ring_seconds": "soon"})
        assert bad.status_code == 422
        llm = LlmApi(http, index["llm"], states.llm.api_key, states.llm.model)
        schema = {"type": "object", "properties": {"extracted": {"properties": {"webinar": {}}}}}
        transcript = [{"role": "user", "content": "user: Так, хочу на webinar"}]
        reply = await llm.chat_json(transcript, schema_name="call_analysis", schema=schema)
        answer = json.loads(reply.content)
        assert answer["outcome"] == "interested" and answer["extracted"] == {"webinar": "yes"}
        assert states.llm.requests[-1].path == "/v1/chat/completions"


async def test_elevenlabs_peer_shares_the_voice_conversations() -> None:
    states = SimulatorStates.demo()
    assert states.voice.elevenlabs is states.elevenlabs
    credentials = states.credentials()
    assert credentials["ELEVENLABS_API_KEY"] == states.elevenlabs.api_key == "sim-elevenlabs-key"
    assert (credentials["ELEVENLABS_AGENT_ID"], credentials["ELEVENLABS_PHONE_NUMBER_ID"]) == (
        "agent_sim",
        "phnum_sim",
    )
    async with httpx.AsyncClient(transport=transport(states), base_url="http://sim") as http:
        voice = HappVoiceApi(http, "http://sim/voice", states.voice.token)
        await voice.originate("sip-1", DEMO_PHONE, 1, call_id="sofa-2")
        assert states.voice.in_flight == 1
        call = states.voice.call("sofa-2")
        await play_call(states.voice, call, Play.answered(7, postcall=False), http)
        assert states.voice.in_flight == 0
        url = f"/elevenlabs/v1/convai/conversations/{call.conversation_id}"
        key = {"xi-api-key": states.elevenlabs.api_key}
        answer = await http.get(url, headers=key)
        assert answer.status_code == 200 and answer.json()["status"] == "done"
        assert answer.json()["metadata"]["call_duration_secs"] == 7
        assert states.elevenlabs.requests[-1].path == f"/v1/convai/conversations/{call.conversation_id}"
        assert (await http.get(url)).status_code == 401
        states.elevenlabs.fail_next(503)
        assert (await http.get(url, headers=key)).status_code == 503
        assert (await http.get(url, headers=key)).status_code == 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    for _ in range(int(seconds * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def wait_for(hits: Sequence[object], count: int) -> None:
    await wait_until(lambda: len(hits) >= count)


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    hits: list[tuple[str, dict[str, str], bytes]] = []
    app = FastAPI()

    @app.post("/sofa/webhook/{name}")
    async def hook(name: str, request: Request) -> dict[str, object]:
        hits.append((name, dict(request.headers), await request.body()))
        return {"dynamic_variables": {"client_name": "Іван"}} if name == "agent-init" else {"success": True}

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started)
    yield f"http://127.0.0.1:{port}/sofa", hits
    server.should_exit = True
    await task


async def test_auto_play_sends_a_whole_call(
    gateway: tuple[str, list[tuple[str, dict[str, str], bytes]]],
) -> None:
    url, hits = gateway
    states = SimulatorStates.demo(gateway=url, auto_play=Play.answered(5))
    states.pause_seconds = 0.01
    async with httpx.AsyncClient(transport=transport(states), base_url="http://sim") as http:
        voice = HappVoiceApi(http, "http://sim/voice", states.voice.token)
        await voice.originate("sip-1", DEMO_PHONE, 1, call_id="sofa-1")
        await wait_for(hits, 4)
        assert [h[0] for h in hits] == ["call-events", "agent-init", "call-events", "agent-postcall"]
        _, headers, raw = hits[-1]
        assert verify_elevenlabs(states.voice.webhook_secret, raw, headers["elevenlabs-signature"])
        variables = json.loads(raw)["data"]["conversation_initiation_client_data"]["dynamic_variables"]
        assert variables["call_id"] == "sofa-1" and variables["client_name"] == "Іван"
        states.auto_play = None
        played = await http.post("/voice/_sim/calls/sofa-1/play", json={"outcome": "busy"})
        assert played.status_code == 202 and played.json()["duration"] == 0
        await wait_for(hits, 6)
        assert json.loads(hits[-1][2])["data"]["failure_reason"] == "busy"
        spec = {"outcome": "short", "duration": 3, "postcall": False, "ring_seconds": 0.01, "talk_seconds": 0}
        assert (await http.post("/voice/_sim/calls/sofa-1/play", json=spec)).status_code == 202
        await wait_for(hits, 9)
        await asyncio.sleep(0.1)
        assert [h[0] for h in hits[6:]] == ["call-events", "agent-init", "call-events"]
        conversation = states.elevenlabs.conversations[states.voice.call("sofa-1").conversation_id]
        assert conversation["status"] == "done" and conversation["metadata"]["call_duration_secs"] == 3
        assert states.errors == []


async def test_demo_plays_elevenlabs_outbound_calls_to_the_gateway(
    gateway: tuple[str, list[tuple[str, dict[str, str], bytes]]],
) -> None:
    url, hits = gateway
    states = SimulatorStates.demo(gateway=url, auto_play=Play.busy())
    assert states.elevenlabs.postcall_url == f"{url}/webhook/agent-postcall"
    assert states.elevenlabs.webhook_secret == states.voice.webhook_secret
    credentials = states.credentials()
    async with httpx.AsyncClient(transport=transport(states), base_url="http://sim") as http:
        eleven = ElevenLabsApi(http, "http://sim/elevenlabs", credentials["ELEVENLABS_API_KEY"])
        started = await eleven.outbound_call(
            "twilio",
            agent_id=credentials["ELEVENLABS_AGENT_ID"],
            agent_phone_number_id=credentials["ELEVENLABS_PHONE_NUMBER_ID"],
            to_number=DEMO_PHONE,
            dynamic_variables={"call_id": "sofa-7"},
        )
        await states.elevenlabs.settle()
    assert [h[0] for h in hits] == ["agent-postcall"]
    _, headers, raw = hits[0]
    assert verify_elevenlabs(credentials["ELEVENLABS_WEBHOOK_SECRET"], raw, headers["elevenlabs-signature"])
    data = json.loads(raw)["data"]
    assert (data["conversation_id"], data["failure_reason"]) == (started.conversation_id, "busy")
    assert states.elevenlabs.errors == [] and states.elevenlabs.in_flight == 0


def test_main_parses_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_run(host: str, port: int, states: SimulatorStates | None = None) -> None:
        seen.update(host=host, port=port, states=states)

    monkeypatch.setattr("simulator.app.run_simulator", fake_run)
    main(["--port", "3999", "--gateway", "http://gw/sofa", "--auto-play", "short", "--duration", "3"])
    states = seen["states"]
    assert isinstance(states, SimulatorStates) and seen["port"] == 3999
    assert states.auto_play == Play("short", 3)
    assert states.voice.postcall_url == "http://gw/sofa/webhook/agent-postcall"
