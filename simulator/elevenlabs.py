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
"""

from __future__ import annotations

import copy
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator import RecordingMiddleware, SimState
from simulator.calls import Outcome, SimCall

if TYPE_CHECKING:  # voice.py imports this module at runtime; VoiceState is only an annotation here
    from simulator.voice import VoiceState

Status = Literal["in-progress", "done"]
_FAILURE_REASON = {"no_answer": "no-answer", "busy": "busy", "failed": "unknown"}


@dataclass
class ElevenLabsState(SimState):
    """The API key the peer accepts and every conversation it knows, by `conversation_id`."""

    api_key: str = "sim-elevenlabs-key"
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def store(self, conversation: dict[str, Any]) -> None:
        """Keep a copy, so later edits of a webhook payload never change what the API answers."""
        self.conversations[str(conversation["conversation_id"])] = copy.deepcopy(conversation)


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
    state: VoiceState,
    call: SimCall,
    outcome: Outcome,
    variables: dict[str, Any],
    ts: int,
    status: Status = "done",
) -> dict[str, Any]:
    """The conversation object: the webhook's `data` and (plus `has_audio`) the API's answer.

    While "in-progress" it has no transcript, no analysis and no duration yet, like a live one.
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
        "type": "sip_trunking",
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
    state: VoiceState, call: SimCall, outcome: Outcome, variables: dict[str, Any], ts: int
) -> dict[str, Any]:
    """The `post_call_transcription` envelope ElevenLabs sends when the conversation's analysis is done."""
    data = conversation_data(state, call, outcome, variables, ts)
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

    app.add_middleware(RecordingMiddleware, state=state)
    return app
