"""The ElevenLabs API on loopback (conversations the simulated agent held), plus the bodies of the
agent's signed webhooks.

    state = ElevenLabsState(api_key="xi")
    app = create_elevenlabs_app(state)    # HAPP_ELEVENLABS_API_URL=http://127.0.0.1:PORT
    # GET /v1/convai/conversations/{conversation_id} with `xi-api-key: xi`
    state.conversations[conv_id]["status"]   # "in-progress" while the call plays, then "done"

`simulator.voice.play_call` fills `conversations` (through `VoiceState.elevenlabs`) for answered
and short calls: "in-progress" when call_start goes out, "done" (the very object the
`post_call_transcription` webhook carries as `data`) when call_end goes out, so a gateway that
missed or never got the webhook (`Outcome(postcall=False)`) can recover the result here.
Unanswered calls have no conversation (404), as on ElevenLabs. Errors look like ElevenLabs':
`{"detail": {"status": "invalid_api_key" | "conversation_not_found", "message": …}}`.

ElevenLabs' own outbound calls (`POST /v1/convai/sip-trunk/outbound-call`, `…/twilio/outbound-call`,
see `simulator.elevenlabs_calls`) land in `state.outbound_calls`; with `state.play` set each one
plays itself and sends its signed webhook to `state.postcall_url`:

    state = ElevenLabsState(postcall_url="http://gw/sofa/webhook/agent-postcall", play=Outcome.busy())
    await state.settle()                  # every started call played
    state.outbound_calls[-1].body, state.deliveries[-1].payload["data"]["failure_reason"]
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hmac
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator import RecordingMiddleware, SimState
from simulator.calls import Outcome, SimCall

if TYPE_CHECKING:  # both import this module at runtime; their types are only annotations here
    from simulator.elevenlabs_calls import OutboundCall
    from simulator.voice import Delivery

Status = Literal["initiated", "in-progress", "done"]
Via = Literal["sip", "twilio"]
_FAILURE_REASON = {"no_answer": "no-answer", "busy": "busy", "failed": "unknown"}


class AgentLine(Protocol):
    """Who talks and from which number: a `VoiceState`, or one outbound call's agent."""

    @property
    def agent_id(self) -> str: ...

    @property
    def caller_number(self) -> str: ...


@dataclass
class ElevenLabsState(SimState):
    """The API key the peer accepts, every conversation it knows (by `conversation_id`) and the
    outbound calls it was asked to make.

    `play` is how each accepted outbound call goes (None: it is recorded, never played, and stays
    in flight); `postcall_url`/`webhook_secret` are where and how its webhook goes, through
    `webhook_http` (None: a fresh client per call). `refuse_next(message)` answers the next
    outbound calls `{"success": false, "message": …}`; `known_agents`/`known_phone_numbers`, when
    set, make other ids a 404. A call is in flight from its accepted request until its webhook is
    sent (`in_flight`, `max_in_flight`, `in_flight_timeline` stamped by `monotonic`).
    `webhook_before_answer` makes a call that fails at once (`play` not answered, no ring) send
    its `call_initiation_failure` before the outbound-call request is answered, as a fast SIP 486
    can: the receiver hears of the failure before it knows the conversation id.
    """

    api_key: str = "sim-elevenlabs-key"
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhook_secret: str = "sim-elevenlabs-secret"
    postcall_url: str | None = None
    caller_number: str = "+380440000000"
    play: Outcome | None = None
    webhook_http: httpx.AsyncClient | None = None
    known_agents: set[str] | None = None
    known_phone_numbers: set[str] | None = None
    webhook_before_answer: bool = False
    outbound_calls: list[OutboundCall] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    max_in_flight: int = 0
    in_flight_timeline: list[tuple[float, int]] = field(default_factory=list)
    _in_flight: set[str] = field(default_factory=set, repr=False)
    _refusals: deque[str] = field(default_factory=deque, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    def store(self, conversation: dict[str, Any]) -> None:
        """Keep a copy, so later edits of a webhook payload never change what the API answers."""
        self.conversations[str(conversation["conversation_id"])] = copy.deepcopy(conversation)

    def outbound(self, key: str) -> OutboundCall:
        """The outbound call known by its conversation id, its call sid or our `call_id`."""
        return next(
            c for c in reversed(self.outbound_calls) if key in (c.conversation_id, c.call_sid, c.call.call_id)
        )

    def refuse_next(
        self, message: str = "Failed to initiate call: callee unreachable", times: int = 1
    ) -> None:
        self._refusals.extend([message] * times)

    def take_refusal(self) -> str | None:
        return self._refusals.popleft() if self._refusals else None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def mark_in_flight(self, record: OutboundCall) -> None:
        if record.conversation_id not in self._in_flight:
            self._in_flight.add(record.conversation_id)
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.in_flight_timeline.append((self.monotonic(), self.in_flight))

    def mark_ended(self, record: OutboundCall) -> None:
        """Idempotent: replaying a call does not end another one."""
        if record.conversation_id in self._in_flight:
            self._in_flight.discard(record.conversation_id)
            self.in_flight_timeline.append((self.monotonic(), self.in_flight))

    def reset_in_flight(self) -> None:
        self._in_flight.clear()
        self.max_in_flight = 0
        self.in_flight_timeline.clear()

    def keep_task(self, task: asyncio.Task[None]) -> None:
        """Hold a background call until it is done (the loop keeps only weak references)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait until every call playing in the background has sent its webhook (or failed: `errors`)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


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


def conversation_data(
    state: AgentLine,
    call: SimCall,
    outcome: Outcome,
    variables: dict[str, Any],
    ts: int,
    status: Status = "done",
    *,
    phone_type: str = "sip_trunking",
) -> dict[str, Any]:
    """The conversation object: the webhook's `data` and (plus `has_audio`) the API's answer.

    While "in-progress" it has no transcript, no analysis and no duration yet, like a live one.
    `phone_type` is `metadata.phone_call.type`: "sip_trunking" or "twilio".
    """
    done = status == "done"
    duration = outcome.duration if done else 0
    dyn = {
        **call.dynamic_variables,
        **variables,
        "system__agent_id": state.agent_id,
        "system__conversation_id": call.conversation_id,
        "system__called_number": call.phone_number,
        "system__caller_id": state.caller_number,
        "system__call_sid": call.provider_call_id,
        "system__call_duration_secs": duration,
    }
    results = {
        k: {"data_collection_id": k, "value": v, "json_schema": None, "rationale": "simulated"}
        for k, v in outcome.data_collection.items()
    }
    phone = {
        "direction": "outbound",
        "type": phone_type,
        "agent_number": state.caller_number,
        "external_number": call.phone_number,
        "call_sid": call.provider_call_id,
    }
    analysis = {
        "call_successful": outcome.call_successful,
        "transcript_summary": outcome.summary,
        "data_collection_results": results,
        "evaluation_criteria_results": {},
    }
    return {
        "agent_id": state.agent_id,
        "conversation_id": call.conversation_id,
        "status": status,
        "transcript": _transcript(outcome) if done else [],
        "metadata": {
            "start_time_unix_secs": ts - duration,
            "call_duration_secs": duration,
            "termination_reason": "Call ended by remote party" if done else "",
            "phone_call": phone,
        },
        "analysis": analysis if done else None,
        "conversation_initiation_client_data": {"dynamic_variables": dyn},
    }


def postcall_payload(
    state: AgentLine,
    call: SimCall,
    outcome: Outcome,
    variables: dict[str, Any],
    ts: int,
    *,
    phone_type: str = "sip_trunking",
) -> dict[str, Any]:
    """The `post_call_transcription` envelope ElevenLabs sends when the conversation's analysis is done."""
    data = conversation_data(state, call, outcome, variables, ts, phone_type=phone_type)
    return {"type": "post_call_transcription", "event_timestamp": ts, "data": data}


def audio_payload(state: AgentLine, call: SimCall, ts: int, audio: bytes) -> dict[str, Any]:
    """The `post_call_audio` envelope: the conversation's whole recording, base64 in `full_audio`."""
    data = {
        "agent_id": state.agent_id,
        "conversation_id": call.conversation_id,
        "full_audio": base64.b64encode(audio).decode(),
    }
    return {"type": "post_call_audio", "event_timestamp": ts, "data": data}


def initiation_failure_payload(
    state: AgentLine, call: SimCall, outcome: Outcome, ts: int, *, via: Via = "sip"
) -> dict[str, Any]:
    """The `call_initiation_failure` envelope (`failure_reason` busy / no-answer / unknown);
    `metadata` is the SIP trunk's or Twilio's own report, by `via`."""
    reason = _FAILURE_REASON.get(outcome.kind, "unknown")
    body: dict[str, Any] = {"call_sid": call.provider_call_id, "to": call.phone_number}
    if via == "twilio":
        body = {"CallSid": call.provider_call_id, "To": call.phone_number, "CallStatus": reason}
    data = {
        "agent_id": state.agent_id,
        "conversation_id": call.conversation_id,
        "failure_reason": reason,
        "metadata": {"type": via, "body": body},
    }
    return {"type": "call_initiation_failure", "event_timestamp": ts, "data": data}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"status": code, "message": message}}, status_code=status)


def create_elevenlabs_app(state: ElevenLabsState | None = None) -> FastAPI:
    """The simulated ElevenLabs API; `app.state.sim` is the `ElevenLabsState`."""
    state = state or ElevenLabsState()
    app = FastAPI(title="ElevenLabs simulator")
    app.state.sim = state

    @app.middleware("http")
    async def api_key(request: Request, call_next: Any) -> Any:
        given = request.headers.get("xi-api-key") or ""
        if not hmac.compare_digest(given.encode(), state.api_key.encode()):
            return _error(401, "invalid_api_key", "Invalid API key")
        return await call_next(request)

    @app.get("/v1/convai/conversations/{conversation_id}")
    async def get_conversation(conversation_id: str) -> Any:
        conversation = state.conversations.get(conversation_id)
        if conversation is None:
            return _error(404, "conversation_not_found", f"Conversation {conversation_id} not found")
        return {**copy.deepcopy(conversation), "has_audio": False}

    # Imported here: that module builds on this one's state and payloads.
    from simulator.elevenlabs_calls import add_outbound_routes

    add_outbound_routes(app, state)
    app.add_middleware(RecordingMiddleware, state=state)
    return app
