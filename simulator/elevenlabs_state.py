"""The ElevenLabs peer's state, and the bodies its conversations and webhooks carry.

    state = ElevenLabsState(api_key="xi", postcall_url="http://gw/sofa/webhook/agent-postcall")
    state.conversations[conv_id]["status"]            # "initiated", "in-progress", then "done"
    state.outbound_calls[-1]                          # an OutboundDial: the request and its SimCall
    postcall_payload(voice_state, call, Play.answered(40), {}, ts)   # a signed webhook's body
    initiation_failure_payload(voice_state, call, Play.busy(), ts)

Both ways a simulated call reaches the agent build their conversations and webhooks here: the
voice SaaS's calls (`simulator.voice.play_call`) and ElevenLabs' own outbound calls
(`simulator.elevenlabs_calls`); `simulator.elevenlabs` serves the state as the ElevenLabs API.
This module imports only `simulator` and `simulator.calls`, so each of those imports it and
nothing imports back.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from simulator import SimState
from simulator.calls import Delivery, Play, SimCall

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
class OutboundDial:
    """One outbound call the peer accepted (`POST …/outbound-call`): `via`, the request `body`, and
    `call`, whose `conversation_id` and `provider_call_id` (the sipCallId / callSid) are what it
    answered. Its `agent_id` and `caller_number` are who talks in the conversation it leaves."""

    via: Via
    body: dict[str, Any]
    call: SimCall
    agent_id: str
    caller_number: str

    @property
    def conversation_id(self) -> str:
        return self.call.conversation_id

    @property
    def call_sid(self) -> str:
        return self.call.provider_call_id

    @property
    def dynamic_variables(self) -> dict[str, Any]:
        return self.call.dynamic_variables


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
    play: Play | None = None
    webhook_http: httpx.AsyncClient | None = None
    known_agents: set[str] | None = None
    known_phone_numbers: set[str] | None = None
    webhook_before_answer: bool = False
    outbound_calls: list[OutboundDial] = field(default_factory=list)
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

    def outbound(self, key: str) -> OutboundDial:
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

    def mark_in_flight(self, record: OutboundDial) -> None:
        if record.conversation_id not in self._in_flight:
            self._in_flight.add(record.conversation_id)
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.in_flight_timeline.append((self.monotonic(), self.in_flight))

    def mark_ended(self, record: OutboundDial) -> None:
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


def _transcript(play: Play) -> list[dict[str, Any]]:
    if play.transcript is not None:
        return play.transcript
    lines = (
        "Добрий день! Вам зручно говорити?",
        "Так, слухаю.",
        "Коли вам зручно поспілкуватися?",
        "Завтра.",
    )
    step = max(play.duration, 1) / len(lines)
    roles = ("agent", "user")
    return [
        {"role": roles[i % 2], "message": m, "time_in_call_secs": round(i * step, 1)}
        for i, m in enumerate(lines)
    ]


def conversation_data(
    state: AgentLine,
    call: SimCall,
    play: Play,
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
    duration = play.duration if done else 0
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
        for k, v in play.data_collection.items()
    }
    phone = {
        "direction": "outbound",
        "type": phone_type,
        "agent_number": state.caller_number,
        "external_number": call.phone_number,
        "call_sid": call.provider_call_id,
    }
    analysis = {
        "call_successful": play.call_successful,
        "transcript_summary": play.summary,
        "data_collection_results": results,
        "evaluation_criteria_results": {},
    }
    return {
        "agent_id": state.agent_id,
        "conversation_id": call.conversation_id,
        "status": status,
        "transcript": _transcript(play) if done else [],
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
    play: Play,
    variables: dict[str, Any],
    ts: int,
    *,
    phone_type: str = "sip_trunking",
) -> dict[str, Any]:
    """The `post_call_transcription` envelope ElevenLabs sends when the conversation's analysis is done."""
    data = conversation_data(state, call, play, variables, ts, phone_type=phone_type)
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
    state: AgentLine, call: SimCall, play: Play, ts: int, *, via: Via = "sip"
) -> dict[str, Any]:
    """The `call_initiation_failure` envelope (`failure_reason` busy / no-answer / unknown);
    `metadata` is the SIP trunk's or Twilio's own report, by `via`."""
    reason = _FAILURE_REASON.get(play.kind, "unknown")
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
