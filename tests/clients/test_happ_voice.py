"""HappVoiceApi against the voice-SaaS simulator: path, Bearer auth, body, provider call id, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from happ_integ.clients.happ_voice import HappVoiceApi, VoiceOriginateAnswer
from happ_integ.errors import Unauthorized, UpstreamError, UpstreamRejected
from simulator.voice import VoiceState, create_voice_app

BASE = "http://voice.test/api"


@pytest.fixture
async def voice() -> AsyncIterator[tuple[VoiceState, httpx.AsyncClient]]:
    state = VoiceState(token="va-token-0123456789")
    app = create_voice_app(state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield state, http


def client(http: httpx.AsyncClient, token: str = "va-token-0123456789") -> HappVoiceApi:
    return HappVoiceApi(http, "http://voice.test", token)


async def test_originate_sends_what_the_saas_expects(voice: tuple[VoiceState, httpx.AsyncClient]) -> None:
    state, http = voice
    result = await client(http).originate(
        "sip-7", "+380994829573", 17, {"client_name": "Іван"}, call_id="sofa-c-1"
    )
    call = state.calls[-1]
    assert result.provider_call_id == call.provider_call_id and result.raw["status"] == "initiated"
    assert call.call_id == "sofa-c-1" and call.sip_id == "sip-7"
    sent = state.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/sip-7/originate/")
    assert sent.header("authorization") == "Bearer va-token-0123456789"
    assert sent.json == {
        "phone_number": "+380994829573",
        "assistant_id": 17,
        "call_id": "sofa-c-1",
        "dynamic_variables": {"client_name": "Іван", "call_id": "sofa-c-1"},
        "metadata": {"call_id": "sofa-c-1"},
    }


async def test_top_level_call_id_names_the_call(voice: tuple[VoiceState, httpx.AsyncClient]) -> None:
    state, http = voice
    await client(http).originate(
        "sip-7", "+380994829573", 17, {"call_id": "theirs"}, call_id="sofa-c-2", metadata={"call_id": "m"}
    )
    sent = state.requests[-1].json
    # The caller's own values stay where they put them; the top-level field is ours and wins.
    assert sent["call_id"] == "sofa-c-2"
    assert sent["dynamic_variables"] == {"call_id": "theirs"} and sent["metadata"] == {"call_id": "m"}
    assert state.calls[-1].call_id == "sofa-c-2"


async def test_minimal_originate_body(voice: tuple[VoiceState, httpx.AsyncClient]) -> None:
    state, http = voice
    await client(http).originate("sip-7", "+380994829573", None)
    assert state.requests[-1].json == {"phone_number": "+380994829573"}
    assert state.calls[-1].call_id == state.calls[-1].provider_call_id


async def test_errors(voice: tuple[VoiceState, httpx.AsyncClient]) -> None:
    state, http = voice
    with pytest.raises(Unauthorized) as caught:
        await client(http, "bad-token-987654").originate("sip-7", "+380994829573", 1)
    assert "bad-token-987654" not in str(caught.value)
    with pytest.raises(UpstreamRejected):
        await client(http).originate("sip-7", "", 1)
    state.fail_next(503)
    with pytest.raises(UpstreamError):
        await client(http).originate("sip-7", "+380994829573", 1)
    assert len(state.calls) == 0 and len(state.requests) == 3


async def test_base_path_is_kept_and_timeouts_map() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) > 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(201, json={"data": {"call_id": 991}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = HappVoiceApi(http, BASE + "/", "t0ken-0123456789", timeout=2)
        assert (await api.originate("s1", "+1", "a")).provider_call_id == "991"
        assert str(seen[0].url) == "http://voice.test/api/s1/originate/"
        with pytest.raises(UpstreamError, match="HappVoice timed out on POST /api/s1/originate/"):
            await api.originate("s1", "+1", "a")


def test_originate_result_parsing() -> None:
    assert VoiceOriginateAnswer.from_body({"callId": "x1"}).provider_call_id == "x1"
    assert VoiceOriginateAnswer.from_body({"id": 5, "ok": True}).provider_call_id == "5"
    assert VoiceOriginateAnswer.from_body({"success": True}).provider_call_id is None
    assert VoiceOriginateAnswer.from_body(None).raw == {"result": None}
