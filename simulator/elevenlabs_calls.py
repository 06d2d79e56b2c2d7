"""ElevenLabs' own outbound calls on loopback: the agent dials over a SIP trunk or Twilio.

    state = ElevenLabsState(api_key="xi", postcall_url="/sofa/webhook/agent-postcall",
                            play=Play.answered(30, talk_seconds=0.2), webhook_http=gateway_client)
    app = create_elevenlabs_app(state)   # these routes are part of it
    # POST /v1/convai/sip-trunk/outbound-call  (or /v1/convai/twilio/outbound-call) with `xi-api-key`
    await state.settle()                 # every accepted call played, its webhook sent
    state.outbound_calls[-1].body, state.deliveries[-1].payload, state.max_in_flight
    await play_outbound(state, state.outbound("c-42"), Play.busy(), gateway_client)   # by hand

A request needs `agent_id`, `agent_phone_number_id` and `to_number` (422 in FastAPI's shape
otherwise) and answers `{"success": true, "message": "Success", "conversation_id": "conv_…",
"sipCallId": "…"}` (SIP) or `{…, "callSid": "CA…"}` (Twilio); `state.refuse_next(message)` makes the
next one `{"success": false, "message": …}` and starts nothing. An accepted call is an `OutboundDial`
in `state.outbound_calls` (both from `simulator.elevenlabs_state`), in flight until its webhook is sent. When it plays (`state.play`, or `play_outbound`): `ring_seconds`, then for an
answered/short call the conversation is "in-progress" on the API, `talk_seconds`, then "done" and
a signed `post_call_transcription` whose dynamic variables are the request's (so `call_id` comes
back); a busy/no-answer/failed call's conversation ("initiated" while it rings) is gone, and it sends `call_initiation_failure`
(`failure_reason` "busy" / "no-answer" / "unknown"). `Play(postcall=False)` sends no webhook
at all: ElevenLabs reports these calls through nothing else, so that is a lost webhook.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator import sign_elevenlabs
from simulator.calls import Delivery, Play, SimCall
from simulator.elevenlabs_state import (
    ElevenLabsState,
    OutboundDial,
    Via,
    conversation_data,
    initiation_failure_payload,
    postcall_payload,
)

REQUIRED = ("agent_id", "agent_phone_number_id", "to_number")
_SID_KEY: dict[Via, str] = {"sip": "sipCallId", "twilio": "callSid"}
_PHONE_TYPE: dict[Via, str] = {"sip": "sip_trunking", "twilio": "twilio"}


def _missing(fields: list[str]) -> JSONResponse:
    detail = [{"type": "missing", "loc": ["body", name], "msg": "Field required"} for name in fields]
    return JSONResponse({"detail": detail}, status_code=422)


def _not_found(code: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"status": code, "message": message}}, status_code=404)


def _new_sid(via: Via) -> str:
    return f"CA{uuid.uuid4().hex}" if via == "twilio" else f"sip_{uuid.uuid4().hex[:24]}"


async def _outbound(state: ElevenLabsState, via: Via, request: Request) -> Any:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _missing(list(REQUIRED))
    missing = [name for name in REQUIRED if not isinstance(body.get(name), str) or not body[name].strip()]
    if missing:
        return _missing(missing)
    agent_id, number_id, to_number = (str(body[name]) for name in REQUIRED)
    if state.known_agents is not None and agent_id not in state.known_agents:
        return _not_found("agent_not_found", f"Agent {agent_id} not found")
    if state.known_phone_numbers is not None and number_id not in state.known_phone_numbers:
        return _not_found("phone_number_not_found", f"Phone number {number_id} not found")
    refusal = state.take_refusal()
    if refusal is not None:
        return {"success": False, "message": refusal, "conversation_id": None, _SID_KEY[via]: None}
    client_data = body.get("conversation_initiation_client_data")
    variables = client_data.get("dynamic_variables") if isinstance(client_data, dict) else None
    call = SimCall(
        _new_sid(via),
        number_id,
        to_number,
        agent_id,
        dict(variables) if isinstance(variables, dict) else {},
        {},
    )
    record = OutboundDial(via, body, call, agent_id, state.caller_number)
    state.outbound_calls.append(record)
    state.mark_in_flight(record)
    # The conversation exists from the request on, "initiated" while the number rings.
    ringing = conversation_data(
        record, call, Play.no_answer(), {}, int(state.clock()), "initiated", phone_type=_PHONE_TYPE[via]
    )
    state.store(ringing)
    play = state.play
    if play is not None and state.webhook_before_answer and _fails_at_once(play):
        # A fast SIP 486: the failure webhook is out (and answered) before this request is.
        await _play_now(state, record, play)
    elif play is not None:
        start_playing(state, record, play)
    return {
        "success": True,
        "message": "Success",
        "conversation_id": record.conversation_id,
        _SID_KEY[via]: record.call_sid,
    }


def add_outbound_routes(app: FastAPI, state: ElevenLabsState) -> None:
    """`POST /v1/convai/sip-trunk/outbound-call` and `POST /v1/convai/twilio/outbound-call` on `app`
    (whose middleware already checked `xi-api-key`)."""

    @app.post("/v1/convai/sip-trunk/outbound-call")
    async def sip_outbound_call(request: Request) -> Any:
        return await _outbound(state, "sip", request)

    @app.post("/v1/convai/twilio/outbound-call")
    async def twilio_outbound_call(request: Request) -> Any:
        return await _outbound(state, "twilio", request)


async def _post_signed(
    state: ElevenLabsState, http: httpx.AsyncClient, url: str, payload: dict[str, Any]
) -> Delivery:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "content-type": "application/json",
        "ElevenLabs-Signature": sign_elevenlabs(state.webhook_secret, body, int(state.clock())),
    }
    response = await http.post(url, content=body, headers=headers)
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text
    delivery = Delivery(str(payload["type"]), url, payload, response.status_code, answer)
    state.deliveries.append(delivery)
    return delivery


async def play_outbound(
    state: ElevenLabsState, record: OutboundDial, play: Play, http: httpx.AsyncClient
) -> list[Delivery]:
    """Play one accepted call to its end and send its webhook to `state.postcall_url` through `http`.

    The conversation (or its absence) and the in-flight mark change before the webhook is sent,
    never after its answer: a receiver that looks the call up while it handles the webhook sees
    it ended, as it would on ElevenLabs.
    """
    call, phone_type = record.call, _PHONE_TYPE[record.via]
    if play.ring_seconds > 0:
        await asyncio.sleep(play.ring_seconds)
    if play.kind in ("answered", "short"):
        live = conversation_data(
            record, call, play, {}, int(state.clock()), "in-progress", phone_type=phone_type
        )
        state.store(live)
        if play.talk_seconds > 0:
            await asyncio.sleep(play.talk_seconds)
        payload = postcall_payload(record, call, play, {}, int(state.clock()), phone_type=phone_type)
        state.store(payload["data"])
    else:
        # ElevenLabs holds no conversation for a call nobody answered (even a replayed one).
        state.conversations.pop(call.conversation_id, None)
        payload = initiation_failure_payload(record, call, play, int(state.clock()), via=record.via)
    state.mark_ended(record)
    if not play.postcall or state.postcall_url is None:
        return []
    return [await _post_signed(state, http, state.postcall_url, payload)]


def _fails_at_once(play: Play) -> bool:
    return play.kind not in ("answered", "short") and play.ring_seconds <= 0


async def _play_now(state: ElevenLabsState, record: OutboundDial, play: Play) -> None:
    try:
        if state.webhook_http is not None:
            await play_outbound(state, record, play, state.webhook_http)
            return
        async with httpx.AsyncClient(timeout=30) as http:
            await play_outbound(state, record, play, http)
    except Exception as exc:  # keep serving; remember why a call did not play
        state.errors.append(f"{record.conversation_id}: {type(exc).__name__}: {exc}")


def start_playing(state: ElevenLabsState, record: OutboundDial, play: Play) -> None:
    """Play `record` in the background (`state.settle()` waits for it); failures land in `state.errors`."""

    state.keep_task(asyncio.get_running_loop().create_task(_play_now(state, record, play)))
