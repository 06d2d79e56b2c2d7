"""ElevenLabsApi.outbound_call against the ElevenLabs simulator: both endpoints, the body, the ids
read back, and a call ElevenLabs refused (`success: false`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
import pytest

from happ_integ.clients.elevenlabs import ElevenLabsApi, OutboundCallResult
from happ_integ.errors import UpstreamRejected, ValidationFailed
from simulator.elevenlabs import create_elevenlabs_app
from simulator.elevenlabs_state import ElevenLabsState

BASE = "http://elevenlabs.test"
KEY = "xi-key-0123456789"
PHONE = "+380994829573"


@pytest.fixture
async def env() -> AsyncIterator[tuple[ElevenLabsState, ElevenLabsApi]]:
    state = ElevenLabsState(api_key=KEY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_elevenlabs_app(state))) as http:
        yield state, ElevenLabsApi(http, BASE, KEY)


async def start(api: ElevenLabsApi, via: Literal["sip", "twilio"], **variables: Any) -> OutboundCallResult:
    return await api.outbound_call(
        via,
        agent_id="agent_sim",
        agent_phone_number_id="phnum_sim",
        to_number=PHONE,
        dynamic_variables={"call_id": "sofa-1", **variables},
    )


@pytest.mark.parametrize(
    ("via", "path"),
    [("sip", "/v1/convai/sip-trunk/outbound-call"), ("twilio", "/v1/convai/twilio/outbound-call")],
)
async def test_outbound_call_sends_what_elevenlabs_expects(
    env: tuple[ElevenLabsState, ElevenLabsApi], via: Literal["sip", "twilio"], path: str
) -> None:
    state, api = env
    result = await start(api, via, client_name="Іван")
    sent = state.requests[-1]
    assert (sent.method, sent.path) == ("POST", path) and sent.header("xi-api-key") == KEY
    assert sent.json == {
        "agent_id": "agent_sim",
        "agent_phone_number_id": "phnum_sim",
        "to_number": PHONE,
        "conversation_initiation_client_data": {
            "dynamic_variables": {"call_id": "sofa-1", "client_name": "Іван"}
        },
    }
    record = state.outbound_calls[-1]
    assert result == OutboundCallResult(
        success=True, message="Success", conversation_id=record.conversation_id, call_sid=record.call_sid
    )
    assert result.call_sid and result.call_sid.startswith("CA" if via == "twilio" else "sip_")


async def test_a_refused_call_is_rejected_with_the_message_masked(
    env: tuple[ElevenLabsState, ElevenLabsApi],
) -> None:
    state, api = env
    state.refuse_next(f"Failed to initiate call to {PHONE}: key {KEY} has no Twilio access")
    with pytest.raises(UpstreamRejected) as caught:
        await start(api, "twilio")
    message = caught.value.message
    assert "Failed to initiate call" in message and "/v1/convai/twilio/outbound-call" in message
    assert KEY not in message and "380994829573" not in message and KEY not in repr(caught.value.details)
    assert not caught.value.retryable and state.outbound_calls == []
    assert (await start(api, "twilio")).success  # only the next one was refused


async def test_missing_fields_are_rejected(env: tuple[ElevenLabsState, ElevenLabsApi]) -> None:
    state, api = env
    with pytest.raises(UpstreamRejected) as caught:
        await api.outbound_call(
            "sip", agent_id="", agent_phone_number_id="phnum_sim", to_number=PHONE, dynamic_variables={}
        )
    assert caught.value.details["status"] == 422 and "Field required" in caught.value.message
    with pytest.raises(ValidationFailed):
        await api.outbound_call(
            "fax",  # type: ignore[arg-type]
            agent_id="a",
            agent_phone_number_id="p",
            to_number=PHONE,
            dynamic_variables={},
        )
    assert len(state.requests) == 1


def test_result_parsing() -> None:
    assert OutboundCallResult.from_body({"success": True, "sip_call_id": "s1"}, "sip").call_sid == "s1"
    assert OutboundCallResult.from_body({"success": True, "sipCallId": "s2"}, "sip").call_sid == "s2"
    assert OutboundCallResult.from_body({"success": True, "callSid": "CA1"}, "twilio").call_sid == "CA1"
    # The other endpoint's key is not this one's call id.
    assert OutboundCallResult.from_body({"success": True, "callSid": "CA1"}, "sip").call_sid is None
    odd = OutboundCallResult.from_body({"success": "yes", "conversation_id": 7, "message": 3}, "sip")
    assert (odd.success, odd.conversation_id, odd.message) == (False, "7", None)
    assert OutboundCallResult.from_body(None, "twilio") == OutboundCallResult(success=False)
