"""All simulated peers on one port, for `happ dev --simulate` and manual demos.

    run_simulator("127.0.0.1", 3100)                   # or: python -m simulator.app --port 3100
    # HAPP_NETHUNT_API_URL=http://127.0.0.1:3100/nethunt/api/v1/zapier
    # HAPP_KEYCRM_API_URL=http://127.0.0.1:3100/keycrm/v1
    # HAPP_SAAS_API_URL=http://127.0.0.1:3100/voice
    # HAPP_ELEVENLABS_API_URL=http://127.0.0.1:3100/elevenlabs
    # HAPP_LLM_BASE_URL=http://127.0.0.1:3100/llm/v1  HAPP_LLM_MODEL=sim-analyst  HAPP_LLM_API_KEY=sim-llm-key

    states = SimulatorStates.demo(gateway="http://127.0.0.1:3001/sofa", auto_play=Play.answered(30))
    app = create_simulator_app(states)   # states.nethunt / .keycrm / .voice / .elevenlabs / .llm stay inspectable

With `auto_play` every originated call plays itself a moment later (to the configured webhook
URLs); without it, `POST /voice/_sim/calls/{call_id}/play {"outcome": "busy"}` plays one call
(`outcome`: answered | short | no_answer | busy | failed, `duration` seconds; optional
`ring_seconds`, `talk_seconds`, `postcall`). `GET /voice/_sim/calls` lists the calls. The voice
peer's played conversations are what the ElevenLabs peer answers (`states.voice.elevenlabs` is
`states.elevenlabs`). Calls ElevenLabs dials itself (`POST /elevenlabs/v1/convai/sip-trunk/outbound-call`
or `…/twilio/outbound-call`) play as `states.elevenlabs.play` says (the demo's `auto_play`) and
send their signed webhook to the gateway's agent-postcall. The model peer under `/llm` analyses
transcripts by keywords (`simulator.llm`). The demo data: a NetHunt folder "Leads" and a KeyCRM
pipeline "Sales" with one contact, +380994829573 ("Іван Петренко").
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator.calls import Play, SimCall
from simulator.elevenlabs import create_elevenlabs_app
from simulator.elevenlabs_state import ElevenLabsState
from simulator.keycrm import KeyCrmState, create_keycrm_app, seed_demo
from simulator.llm import LlmState, create_llm_app
from simulator.nethunt import NetHuntState, create_nethunt_app
from simulator.voice import VoiceState, create_voice_app, play_call

PREFIXES = {
    "nethunt": "/nethunt/api/v1/zapier",
    "keycrm": "/keycrm/v1",
    "voice": "/voice",
    "elevenlabs": "/elevenlabs",
    "llm": "/llm/v1",
}
DEMO_PHONE = "+380994829573"


@dataclass
class SimulatorStates:
    """The peers' states, plus what dev mode needs: auto-play and background-task bookkeeping.

    `elevenlabs` becomes the voice peer's `elevenlabs` too (after init), so the conversations the
    voice simulator plays are the ones the ElevenLabs API peer answers.
    """

    nethunt: NetHuntState = field(default_factory=NetHuntState)
    keycrm: KeyCrmState = field(default_factory=KeyCrmState)
    voice: VoiceState = field(default_factory=VoiceState)
    elevenlabs: ElevenLabsState = field(default_factory=ElevenLabsState)
    llm: LlmState = field(default_factory=LlmState)
    auto_play: Play | None = None
    pause_seconds: float = 0.5
    errors: list[str] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self.voice.elevenlabs = self.elevenlabs

    @classmethod
    def demo(cls, gateway: str | None = None, auto_play: Play | None = None) -> SimulatorStates:
        """Seeded states; `gateway` (e.g. `http://127.0.0.1:3001/sofa`) points the voice webhooks and
        ElevenLabs' own post-call webhooks at it; `auto_play` is how every call plays, on both."""
        states = cls(auto_play=auto_play)
        # One agent, one secret: the gateway verifies every post-call webhook with the same key.
        states.elevenlabs.webhook_secret = states.voice.webhook_secret
        states.elevenlabs.play = auto_play
        # As on ElevenLabs: a call refused at once reports it before the outbound-call answer.
        states.elevenlabs.webhook_before_answer = True
        folder = states.nethunt.add_folder("Leads", folder_id="leads")
        states.nethunt.add_record(
            folder,
            {"Name": "Іван Петренко", "Phone": [DEMO_PHONE], "Company": "ТОВ Компанія", "Source": "Facebook"},
        )
        seed_demo(states.keycrm)
        if gateway:
            base = gateway.rstrip("/")
            states.voice.call_events_url = f"{base}/webhook/call-events"
            states.voice.agent_init_url = f"{base}/webhook/agent-init"
            states.voice.postcall_url = f"{base}/webhook/agent-postcall"
            states.elevenlabs.postcall_url = f"{base}/webhook/agent-postcall"
        return states

    def credentials(self) -> dict[str, str]:
        """The integration secrets that make a gateway talk to these peers (what `happ dev --simulate` sets)."""
        return {
            "NETHUNT_EMAIL": self.nethunt.email,
            "NETHUNT_API_KEY": self.nethunt.api_key,
            "NETHUNT_FOLDER_ID": next(iter(self.nethunt.folders), "leads"),
            "KEYCRM_API_KEY": self.keycrm.api_key,
            "SAAS_AUTH_TOKEN": self.voice.token,
            "SAAS_SIP_ID": "sim-sip",
            "SAAS_ASSISTANT_ID": "sim-assistant",
            "ELEVENLABS_WEBHOOK_SECRET": self.voice.webhook_secret,
            "ELEVENLABS_API_KEY": self.elevenlabs.api_key,
            "ELEVENLABS_AGENT_ID": "agent_sim",
            "ELEVENLABS_PHONE_NUMBER_ID": "phnum_sim",
        }

    def play_in_background(self, call: SimCall, play: Play) -> None:
        """Play `call` on a fresh HTTP client after `pause_seconds`; failures land in `errors`."""

        async def run() -> None:
            try:
                await asyncio.sleep(self.pause_seconds)
                async with httpx.AsyncClient(timeout=30) as http:
                    await play_call(self.voice, call, play, http, pause=self.pause_seconds)
            except Exception as exc:  # dev helper: keep serving, remember why a call did not play
                self.errors.append(f"{call.call_id}: {type(exc).__name__}: {exc}")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _add_dev_routes(voice_app: FastAPI, states: SimulatorStates) -> None:
    @voice_app.post("/_sim/echo")
    async def echo(request: Request) -> dict[str, Any]:
        """Answers with what it received, headers included: a careless peer, to test redaction."""
        return {"headers": dict(request.headers), "body": (await request.body()).decode(errors="replace")}

    @voice_app.get("/_sim/calls")
    async def list_calls() -> dict[str, Any]:
        calls = [{"call_id": c.call_id, "provider_call_id": c.provider_call_id} for c in states.voice.calls]
        return {"calls": calls, "errors": states.errors}

    @voice_app.post("/_sim/calls/{call_id}/play", status_code=202)
    async def play_one(call_id: str, request: Request) -> Any:
        spec = await request.json() if await request.body() else {}
        kind = spec.get("outcome", "answered")
        if kind not in ("answered", "short", "no_answer", "busy", "failed"):
            return JSONResponse({"detail": f"unknown outcome {kind!r}"}, status_code=422)
        try:
            call = states.voice.call(call_id)
        except StopIteration:
            return JSONResponse({"detail": "no such call"}, status_code=404)
        try:
            answered = kind in ("answered", "short")
            duration = int(spec.get("duration", 45 if kind == "answered" else 2)) if answered else 0
            ring, talk = float(spec.get("ring_seconds", 0)), float(spec.get("talk_seconds", 0))
        except (TypeError, ValueError):
            return JSONResponse({"detail": "duration and *_seconds must be numbers"}, status_code=422)
        postcall = bool(spec.get("postcall", True))
        play = Play(kind, duration, postcall=postcall, ring_seconds=ring, talk_seconds=talk)
        states.play_in_background(call, play)
        return {"playing": call.call_id, "outcome": kind, "duration": duration}


def create_simulator_app(states: SimulatorStates | None = None) -> FastAPI:
    """NetHunt under `/nethunt/api/v1/zapier`, KeyCRM under `/keycrm/v1`, the voice SaaS under `/voice`,
    ElevenLabs under `/elevenlabs`, the model under `/llm` (its base URL is `/llm/v1`)."""
    states = states or SimulatorStates()
    if states.auto_play is not None:
        auto_play = states.auto_play
        states.voice.on_originate = lambda call: states.play_in_background(call, auto_play)
    voice_app = create_voice_app(states.voice)
    _add_dev_routes(voice_app, states)
    app = FastAPI(title="happ-integ simulator")
    app.state.sims = states
    app.mount("/nethunt", create_nethunt_app(states.nethunt))
    app.mount("/keycrm", create_keycrm_app(states.keycrm))
    app.mount("/voice", voice_app)
    app.mount("/elevenlabs", create_elevenlabs_app(states.elevenlabs))
    app.mount("/llm", create_llm_app(states.llm))

    @app.get("/")
    async def index(request: Request) -> dict[str, str]:
        root = str(request.base_url).rstrip("/")
        return {name: root + prefix for name, prefix in PREFIXES.items()}

    return app


def run_simulator(host: str = "127.0.0.1", port: int = 3100, states: SimulatorStates | None = None) -> None:
    """Serve `create_simulator_app(states)` with uvicorn until interrupted."""
    uvicorn.run(
        create_simulator_app(states or SimulatorStates.demo()), host=host, port=port, log_level="info"
    )


def main(argv: list[str] | None = None) -> None:
    """`python -m simulator.app --port 3100 --gateway http://127.0.0.1:3001/sofa --auto-play answered`."""
    parser = argparse.ArgumentParser(
        description="happ-integ loopback peers (NetHunt, KeyCRM, voice SaaS, ElevenLabs, model)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3100)
    parser.add_argument("--gateway", help="integration base URL the voice webhooks go to")
    parser.add_argument("--auto-play", choices=["answered", "short", "no_answer", "busy", "failed"])
    parser.add_argument("--duration", type=int, default=30)
    args = parser.parse_args(argv)
    auto_play = None
    if args.auto_play:
        auto_play = Play(args.auto_play, args.duration if args.auto_play in ("answered", "short") else 0)
    run_simulator(args.host, args.port, SimulatorStates.demo(args.gateway, auto_play))


if __name__ == "__main__":
    main()
