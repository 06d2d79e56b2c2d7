"""The voice-assistant SaaS on loopback, plus the webhooks its ElevenLabs agent sends.

    state = VoiceState(token="t", webhook_secret="s", call_events_url="/sofa/webhook/call-events",
                       agent_init_url="/sofa/webhook/agent-init", postcall_url="/sofa/webhook/agent-postcall")
    app = create_voice_app(state)               # POST /{sip}/originate/ with Bearer t
    ...                                         # the code under test originates a call
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw:
        await play_call(state, state.calls[-1], Play.answered(45, talk_seconds=0.2), gw)
    state.max_in_flight, state.in_flight_timeline   # how many calls overlapped, and when

What a played call sends, in order (each step only when its URL is set):
- answered/short: `call_start` → agent-init request (plain JSON) → `call_end(duration)` → signed `post_call_transcription`
- no-answer/busy/failed: `call_end(duration=0, metadata.status)` → signed `call_initiation_failure`
`Play.ring_seconds` waits before the first event, `talk_seconds` before call_end; `postcall=False`
skips the transcription webhook. Answered and short calls are also conversations on the ElevenLabs
API peer (`state.elevenlabs`, see `simulator.elevenlabs`): "in-progress" from call_start, "done" from call_end.
Call events are `{"eventType", "callId", "conversation_id", "duration", "metadata"}` where `callId` is
our `call_id` when originate carried one (top-level, else in metadata or dynamic_variables; else the
SaaS's id) and metadata echoes originate's. A call is in flight from its accepted originate until its
call_end is sent (before that webhook's answer is awaited); one never played stays in flight.
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
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator import RecordingMiddleware, SimState, bearer_ok, sign_elevenlabs
from simulator.calls import Delivery, Play, SimCall
from simulator.elevenlabs_state import (
    ElevenLabsState,
    conversation_data,
    initiation_failure_payload,
    postcall_payload,
)


@dataclass
class VoiceState(SimState):
    """Credentials, where webhooks go, every originated call (`state.calls`) and the in-flight record.

    `elevenlabs` is where played calls' conversations go (`SimulatorStates` shares one with the
    ElevenLabs API peer). `monotonic` stamps `in_flight_timeline`, a `(time, count)` per change.
    `retry_for` makes the sender retry, as the real SaaS and ElevenLabs do: a webhook that got a 5xx
    or no answer is sent again every `retry_pause` seconds (signed anew) for up to that many
    seconds, and the call's next event waits for it, so events still arrive in order.
    """

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
    elevenlabs: ElevenLabsState = field(default_factory=ElevenLabsState)
    monotonic: Callable[[], float] = time.monotonic
    max_in_flight: int = 0
    in_flight_timeline: list[tuple[float, int]] = field(default_factory=list)
    retry_for: float = 0.0
    retry_pause: float = 1.0
    _in_flight: set[str] = field(default_factory=set, repr=False)

    def call(self, call_id: str) -> SimCall:
        """The call known by our `call_id` or by the provider's id."""
        return next(c for c in reversed(self.calls) if call_id in (c.call_id, c.provider_call_id))

    @property
    def in_flight(self) -> int:
        """Calls accepted and not yet ended (their call_end not yet sent)."""
        return len(self._in_flight)

    def mark_in_flight(self, call: SimCall) -> None:
        """Idempotent; originate calls it for every call it accepts."""
        if call.provider_call_id not in self._in_flight:
            self._in_flight.add(call.provider_call_id)
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.in_flight_timeline.append((self.monotonic(), self.in_flight))

    def mark_ended(self, call: SimCall) -> None:
        """Idempotent: replaying a call does not end another one."""
        if call.provider_call_id in self._in_flight:
            self._in_flight.discard(call.provider_call_id)
            self.in_flight_timeline.append((self.monotonic(), self.in_flight))

    def reset_in_flight(self) -> None:
        """Forget every in-flight call, the maximum and the timeline (between tests of one session)."""
        self._in_flight.clear()
        self.max_in_flight = 0
        self.in_flight_timeline.clear()


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


async def _post(
    state: VoiceState, http: httpx.AsyncClient, kind: str, url: str, payload: dict[str, Any], sign: bool
) -> Delivery:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    # Real time: `state.monotonic` stamps the in-flight timeline and may be a test's tick counter.
    deadline = time.monotonic() + state.retry_for
    attempts = 0
    while True:
        attempts += 1
        headers = {"content-type": "application/json"}
        if sign:
            headers["ElevenLabs-Signature"] = sign_elevenlabs(state.webhook_secret, body, int(state.clock()))
        else:
            headers.update(state.webhook_headers)
        try:
            response = await http.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:  # nobody answered: connection refused, reset, timeout
            status, answer = 0, f"{type(exc).__name__}: {exc}"
        else:
            status = response.status_code
            try:
                answer = response.json()
            except ValueError:
                answer = response.text
        if (status and status < 500) or time.monotonic() + state.retry_pause > deadline:
            break
        await asyncio.sleep(state.retry_pause)
    if status == 0 and not state.retry_for:
        raise httpx.ConnectError(str(answer))  # a sender that does not retry sees the failure
    delivery = Delivery(kind, url, payload, status, answer, attempts)
    state.deliveries.append(delivery)
    return delivery


async def play_call(
    state: VoiceState, call: SimCall, play: Play, http: httpx.AsyncClient, pause: float = 0.0
) -> list[Delivery]:
    """Send the webhooks of one call to the configured URLs through `http`; returns what was sent.

    What the receiver may look up while it handles an event (the call's in-flight mark, its
    conversation on the ElevenLabs peer) changes just before that event is sent, never after its
    answer: a slow call_end handler must not see its own call still in flight.
    """
    sent: list[Delivery] = []

    async def post(
        kind: str,
        url: str | None,
        payload: dict[str, Any],
        sign: bool = False,
        on_send: Callable[[], None] | None = None,
    ) -> Delivery | None:
        if url is not None and pause and sent:
            await asyncio.sleep(pause)
        if on_send is not None:  # even when the URL is unset: the call still starts or ends
            on_send()
        if url is None:
            return None
        sent.append(await _post(state, http, kind, url, payload, sign))
        return sent[-1]

    if play.ring_seconds > 0:
        await asyncio.sleep(play.ring_seconds)
    if play.kind in ("answered", "short"):
        live = conversation_data(state, call, play, {}, int(state.clock()), "in-progress")
        start = call_event(call, "call_start")
        await post("call_start", state.call_events_url, start, on_send=lambda: state.elevenlabs.store(live))
        init = await post("agent_init", state.agent_init_url, agent_init_request(state, call))
        answer = init.response if init and isinstance(init.response, dict) else {}
        variables = answer.get("dynamic_variables")
        variables = variables if isinstance(variables, dict) else {}
        if play.talk_seconds > 0:
            await asyncio.sleep(play.talk_seconds)
        ts = int(state.clock())
        payload = postcall_payload(state, call, play, variables, ts)

        def end() -> None:
            state.mark_ended(call)
            state.elevenlabs.store(payload["data"])  # done before the webhook, as on ElevenLabs

        end_event = call_event(call, "call_end", play.duration)
        await post("call_end", state.call_events_url, end_event, on_send=end)
        if play.postcall:
            await post("post_call_transcription", state.postcall_url, payload, sign=True)
    else:

        def end_unanswered() -> None:
            state.mark_ended(call)
            # ElevenLabs holds no conversation for a call nobody answered (even a replayed one).
            state.elevenlabs.conversations.pop(call.conversation_id, None)

        end_event = call_event(call, "call_end", 0, play.kind)
        await post("call_end", state.call_events_url, end_event, on_send=end_unanswered)
        payload = initiation_failure_payload(state, call, play, int(state.clock()))
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
        ours = body.get("call_id")
        call = SimCall(
            f"va_{uuid.uuid4().hex[:16]}",
            sip_id,
            str(body["phone_number"]),
            body.get("assistant_id"),
            variables if isinstance(variables, dict) else {},
            meta if isinstance(meta, dict) else {},
            requested_call_id=str(ours) if ours not in (None, "") else None,
        )
        state.calls.append(call)
        state.mark_in_flight(call)  # before on_originate: auto-play may end it at once
        if state.on_originate is not None:
            state.on_originate(call)
        return {"success": True, "callId": call.provider_call_id, "status": "initiated"}

    app.add_middleware(RecordingMiddleware, state=state)
    return app
