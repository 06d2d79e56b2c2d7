"""The voice-assistant SaaS on loopback, plus the webhooks its ElevenLabs agent sends.

    state = VoiceState(token="t", webhook_secret="s", call_events_url="/sofa/webhook/call-events",
                       agent_init_url="/sofa/webhook/agent-init", postcall_url="/sofa/webhook/agent-postcall")
    app = create_voice_app(state)               # POST /{sip}/originate/ with Bearer t
    ...                                         # the code under test originates a call
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw:
        await play_call(state, state.calls[-1], Outcome.answered(45), gw)

What a played call sends, in order (each step only when its URL is set):
- answered/short: `call_start` → agent-init request (plain JSON) → `call_end(duration)` → signed `post_call_transcription`
- no-answer/busy/failed: `call_end(duration=0, metadata.status)` → signed `call_initiation_failure`
Call events are `{"eventType", "callId", "conversation_id", "duration", "metadata"}` where `callId` is
our `call_id` when originate carried one (else the SaaS's id) and metadata echoes originate's.
Signed webhooks carry `ElevenLabs-Signature: t=<unix>,v0=<hex HMAC-SHA256(secret, "t.body")>`.
`simulator.app` adds auto-play and `/_sim/…` control routes for `happ dev`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator import RecordingMiddleware, SimState, bearer_ok
from simulator import sign_elevenlabs as sign_elevenlabs  # re-exported
from simulator import verify_elevenlabs as verify_elevenlabs  # re-exported

Kind = Literal["answered", "short", "no_answer", "busy", "failed"]
_FAILURE_REASON = {"no_answer": "no-answer", "busy": "busy", "failed": "unknown"}


@dataclass(frozen=True)
class Outcome:
    """How a played call goes: `Outcome.answered(45)`, `.short(2)`, `.no_answer()`, `.busy()`, `.failed()`."""

    kind: Kind
    duration: int = 0
    summary: str = "Клієнт зацікавлений, просить передзвонити завтра."
    call_successful: str = "success"
    data_collection: dict[str, Any] = field(default_factory=dict)
    transcript: list[dict[str, Any]] | None = None
    postcall: bool = True

    @classmethod
    def answered(cls, duration: int = 45, **kw: Any) -> Outcome:
        return cls("answered", duration, **kw)

    @classmethod
    def short(cls, duration: int = 2, **kw: Any) -> Outcome:
        kw.setdefault("call_successful", "failure")
        kw.setdefault("summary", "The call ended right after it was answered.")
        return cls("short", duration, **kw)

    @classmethod
    def no_answer(cls) -> Outcome:
        return cls("no_answer")

    @classmethod
    def busy(cls) -> Outcome:
        return cls("busy")

    @classmethod
    def failed(cls) -> Outcome:
        return cls("failed")


@dataclass
class SimCall:
    """An originate the simulator accepted; `call_id` is ours when originate carried one."""

    provider_call_id: str
    sip_id: str
    phone_number: str
    assistant_id: Any
    dynamic_variables: dict[str, Any]
    metadata: dict[str, Any]
    conversation_id: str = field(default_factory=lambda: f"conv_{uuid.uuid4().hex[:20]}")

    @property
    def call_id(self) -> str:
        ours = self.metadata.get("call_id") or self.dynamic_variables.get("call_id")
        return str(ours) if ours else self.provider_call_id


@dataclass
class Delivery:
    """One webhook a played call sent and what it got back."""

    kind: str
    url: str
    payload: dict[str, Any]
    status: int
    response: Any


@dataclass
class VoiceState(SimState):
    """Credentials, where webhooks go, and every originated call (`state.calls`)."""

    token: str = "sim-voice-token"
    webhook_secret: str = "sim-elevenlabs-secret"
    agent_id: str = "agent_sim"
    caller_number: str = "+380440000000"
    call_events_url: str | None = None
    agent_init_url: str | None = None
    postcall_url: str | None = None
    webhook_headers: dict[str, str] = field(default_factory=dict)
    on_originate: Callable[[SimCall], None] | None = None
    calls: list[SimCall] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    clock: Callable[[], float] = time.time

    def call(self, call_id: str) -> SimCall:
        """The call known by our `call_id` or by the provider's id."""
        return next(c for c in reversed(self.calls) if call_id in (c.call_id, c.provider_call_id))


def call_event(
    call: SimCall, event_type: str, duration: int | None = None, status: str | None = None
) -> dict[str, Any]:
    """A call-events webhook body: `{"eventType": "call_end", "callId": …, "duration": 45, …}`."""
    body: dict[str, Any] = {
        "eventType": event_type,
        "callId": call.call_id,
        "conversation_id": call.conversation_id,
    }
    if duration is not None:
        body["duration"] = duration
    body["metadata"] = {**call.metadata, "provider_call_id": call.provider_call_id}
    if status:
        body["metadata"]["status"] = status
    return body


def agent_init_request(state: VoiceState, call: SimCall) -> dict[str, Any]:
    """What the agent asks agent-init before it speaks (ElevenLabs' SIP/Twilio fields + `phone_number`)."""
    body = {
        "caller_id": state.caller_number,
        "agent_id": state.agent_id,
        "called_number": call.phone_number,
        "call_sid": call.provider_call_id,
        "phone_number": call.phone_number,
    }
    return {**body, "call_id": call.call_id} if call.call_id != call.provider_call_id else body


def _transcript(outcome: Outcome) -> list[dict[str, Any]]:
    if outcome.transcript is not None:
        return outcome.transcript
    lines = (
        "Добрий день! Вам зручно говорити?",
        "Так, слухаю.",
        "Коли вам зручно поспілкуватися?",
        "Завтра.",
    )
    step = max(outcome.duration, 1) / len(lines)
    roles = ("agent", "user")
    return [
        {"role": roles[i % 2], "message": m, "time_in_call_secs": round(i * step, 1)}
        for i, m in enumerate(lines)
    ]


def postcall_payload(
    state: VoiceState, call: SimCall, outcome: Outcome, variables: dict[str, Any], ts: int
) -> dict[str, Any]:
    """The `post_call_transcription` envelope ElevenLabs sends when the conversation's analysis is done."""
    dyn = {
        **call.dynamic_variables,
        **variables,
        "system__agent_id": state.agent_id,
        "system__conversation_id": call.conversation_id,
        "system__called_number": call.phone_number,
        "system__caller_id": state.caller_number,
        "system__call_sid": call.provider_call_id,
        "system__call_duration_secs": outcome.duration,
    }
    results = {
        k: {"data_collection_id": k, "value": v, "json_schema": None, "rationale": "simulated"}
        for k, v in outcome.data_collection.items()
    }
    phone = {
        "direction": "outbound",
        "type": "sip_trunking",
        "agent_number": state.caller_number,
        "external_number": call.phone_number,
        "call_sid": call.provider_call_id,
    }
    data = {
        "agent_id": state.agent_id,
        "conversation_id": call.conversation_id,
        "status": "done",
        "transcript": _transcript(outcome),
        "metadata": {
            "start_time_unix_secs": ts - outcome.duration,
            "call_duration_secs": outcome.duration,
            "termination_reason": "Call ended by remote party",
            "phone_call": phone,
        },
        "analysis": {
            "call_successful": outcome.call_successful,
            "transcript_summary": outcome.summary,
            "data_collection_results": results,
            "evaluation_criteria_results": {},
        },
        "conversation_initiation_client_data": {"dynamic_variables": dyn},
    }
    return {"type": "post_call_transcription", "event_timestamp": ts, "data": data}


def initiation_failure_payload(state: VoiceState, call: SimCall, outcome: Outcome, ts: int) -> dict[str, Any]:
    """The `call_initiation_failure` envelope (`failure_reason` busy / no-answer / unknown)."""
    data = {
        "agent_id": state.agent_id,
        "conversation_id": call.conversation_id,
        "failure_reason": _FAILURE_REASON.get(outcome.kind, "unknown"),
        "metadata": {"type": "sip", "body": {"call_sid": call.provider_call_id, "to": call.phone_number}},
    }
    return {"type": "call_initiation_failure", "event_timestamp": ts, "data": data}


async def _post(
    state: VoiceState, http: httpx.AsyncClient, kind: str, url: str, payload: dict[str, Any], sign: bool
) -> Delivery:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"content-type": "application/json"}
    if sign:
        headers["ElevenLabs-Signature"] = sign_elevenlabs(state.webhook_secret, body, int(state.clock()))
    else:
        headers.update(state.webhook_headers)
    response = await http.post(url, content=body, headers=headers)
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text
    delivery = Delivery(kind, url, payload, response.status_code, answer)
    state.deliveries.append(delivery)
    return delivery


async def play_call(
    state: VoiceState, call: SimCall, outcome: Outcome, http: httpx.AsyncClient, pause: float = 0.0
) -> list[Delivery]:
    """Send the webhooks of one call to the configured URLs through `http`; returns what was sent."""
    sent: list[Delivery] = []

    async def post(
        kind: str, url: str | None, payload: dict[str, Any], sign: bool = False
    ) -> Delivery | None:
        if url is None:
            return None
        if pause and sent:
            await asyncio.sleep(pause)
        sent.append(await _post(state, http, kind, url, payload, sign))
        return sent[-1]

    ts = int(state.clock())
    if outcome.kind in ("answered", "short"):
        await post("call_start", state.call_events_url, call_event(call, "call_start"))
        init = await post("agent_init", state.agent_init_url, agent_init_request(state, call))
        answer = init.response if init and isinstance(init.response, dict) else {}
        variables = answer.get("dynamic_variables")
        await post("call_end", state.call_events_url, call_event(call, "call_end", outcome.duration))
        if outcome.postcall:
            payload = postcall_payload(
                state, call, outcome, variables if isinstance(variables, dict) else {}, ts
            )
            await post("post_call_transcription", state.postcall_url, payload, sign=True)
    else:
        await post("call_end", state.call_events_url, call_event(call, "call_end", 0, outcome.kind))
        payload = initiation_failure_payload(state, call, outcome, ts)
        await post("call_initiation_failure", state.postcall_url, payload, sign=True)
    return sent


def create_voice_app(state: VoiceState | None = None) -> FastAPI:
    """The simulated SaaS; `app.state.sim` is the `VoiceState`."""
    state = state or VoiceState()
    app = FastAPI(title="Voice assistant simulator")
    app.state.sim = state

    @app.post("/{sip_id}/originate/")
    async def originate(sip_id: str, request: Request) -> Any:
        if not bearer_ok(request.headers.get("authorization"), state.token):
            return JSONResponse({"detail": "Invalid token."}, status_code=401)
        body = await request.json()
        if not isinstance(body, dict) or not str(body.get("phone_number") or "").strip():
            return JSONResponse({"phone_number": ["This field is required."]}, status_code=400)
        variables, meta = body.get("dynamic_variables"), body.get("metadata")
        call = SimCall(
            f"va_{uuid.uuid4().hex[:16]}",
            sip_id,
            str(body["phone_number"]),
            body.get("assistant_id"),
            variables if isinstance(variables, dict) else {},
            meta if isinstance(meta, dict) else {},
        )
        state.calls.append(call)
        if state.on_originate is not None:
            state.on_originate(call)
        return {"success": True, "callId": call.provider_call_id, "status": "initiated"}

    app.add_middleware(RecordingMiddleware, state=state)
    return app
