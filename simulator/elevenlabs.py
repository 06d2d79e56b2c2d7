"""The ElevenLabs API on loopback: the conversations the simulated agent held, and its outbound calls.

    state = ElevenLabsState(api_key="xi")
    app = create_elevenlabs_app(state)    # HAPP_ELEVENLABS_API_URL=http://127.0.0.1:PORT
    # GET /v1/convai/conversations/{conversation_id} with `xi-api-key: xi`
    state.conversations[conv_id]["status"]   # "in-progress" while the call plays, then "done"

`simulator.voice.play_call` fills `conversations` (through `VoiceState.elevenlabs`) for answered
and short calls: "in-progress" when call_start goes out, "done" (the very object the
`post_call_transcription` webhook carries as `data`) when call_end goes out, so a gateway that
missed or never got the webhook (`Play(postcall=False)`) can recover the result here.
Unanswered calls have no conversation (404), as on ElevenLabs. Errors look like ElevenLabs':
`{"detail": {"status": "invalid_api_key" | "conversation_not_found", "message": …}}`.

ElevenLabs' own outbound calls (`POST /v1/convai/sip-trunk/outbound-call`, `…/twilio/outbound-call`,
see `simulator.elevenlabs_calls`) land in `state.outbound_calls`; with `state.play` set each one
plays itself and sends its signed webhook to `state.postcall_url`:

    state = ElevenLabsState(postcall_url="http://gw/sofa/webhook/agent-postcall", play=Play.busy())
    await state.settle()                  # every started call played
    state.outbound_calls[-1].body, state.deliveries[-1].payload["data"]["failure_reason"]

The state and the bodies of the agent's conversations and webhooks are `simulator.elevenlabs_state`'s;
this module only serves them (and adds `simulator.elevenlabs_calls`' routes).
"""

from __future__ import annotations

import copy
import hmac
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator import RecordingMiddleware
from simulator.elevenlabs_calls import add_outbound_routes
from simulator.elevenlabs_state import ElevenLabsState


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

    add_outbound_routes(app, state)
    app.add_middleware(RecordingMiddleware, state=state)
    return app
