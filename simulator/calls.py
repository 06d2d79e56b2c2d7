"""What a simulated call is, how it plays and what it sent: `SimCall` (an accepted originate),
`Play` (the script a played call follows) and `Delivery` (one webhook it sent).

    call = state.calls[-1]                       # a SimCall, from simulator.voice's VoiceState
    call.call_id                                 # ours (originate's call_id) or the SaaS's id
    await play_call(state, call, Play.answered(45, talk_seconds=0.5, postcall=False), http)
    await play_call(state, call, Play.busy(ring_seconds=1), http)
    state.deliveries[-1].status                  # a Delivery: what the receiver answered

Every simulator module that plays calls reads these (`simulator.voice`, `simulator.elevenlabs_state`,
`simulator.elevenlabs_calls`), and this module imports none of them. A `Play` is the simulator's
script, not the call model's `happ_integ.calls.models.Outcome` (how an attempt ended, as the
workflow records it).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["answered", "short", "no_answer", "busy", "failed"]


@dataclass(frozen=True)
class Play:
    """How a played call goes: `Play.answered(45)`, `.short(2)`, `.no_answer()`, `.busy()`, `.failed()`.

    `duration` is what the events report; `ring_seconds` / `talk_seconds` are real waits (before
    the first event / before call_end), so calls can overlap in time.
    """

    kind: Kind
    duration: int = 0
    summary: str = "Клієнт зацікавлений, просить передзвонити завтра."
    call_successful: str = "success"
    data_collection: dict[str, Any] = field(default_factory=dict)
    transcript: list[dict[str, Any]] | None = None
    postcall: bool = True
    ring_seconds: float = 0.0
    talk_seconds: float = 0.0

    @classmethod
    def answered(cls, duration: int = 45, **kw: Any) -> Play:
        return cls("answered", duration, **kw)

    @classmethod
    def short(cls, duration: int = 2, **kw: Any) -> Play:
        kw.setdefault("call_successful", "failure")
        kw.setdefault("summary", "The call ended right after it was answered.")
        return cls("short", duration, **kw)

    @classmethod
    def no_answer(cls, **kw: Any) -> Play:
        return cls("no_answer", **kw)

    @classmethod
    def busy(cls, **kw: Any) -> Play:
        return cls("busy", **kw)

    @classmethod
    def failed(cls, **kw: Any) -> Play:
        return cls("failed", **kw)


@dataclass
class SimCall:
    """An originate the simulator accepted; `call_id` is ours when originate carried one.

    `requested_call_id` is originate's top-level `call_id`; it wins over `metadata.call_id`, then
    `dynamic_variables.call_id`, because it is the one field that exists only to name our call.
    `originated_at` is when the simulator accepted the originate (`time.monotonic()`).
    """

    provider_call_id: str
    sip_id: str
    phone_number: str
    assistant_id: Any
    dynamic_variables: dict[str, Any]
    metadata: dict[str, Any]
    conversation_id: str = field(default_factory=lambda: f"conv_{uuid.uuid4().hex[:20]}")
    requested_call_id: str | None = None
    originated_at: float = field(default_factory=time.monotonic)

    @property
    def call_id(self) -> str:
        ours = self.requested_call_id or self.metadata.get("call_id") or self.dynamic_variables.get("call_id")
        return str(ours) if ours else self.provider_call_id


@dataclass
class Delivery:
    """One webhook a played call sent and what it got back."""

    kind: str
    url: str
    payload: dict[str, Any]
    status: int
    response: Any
    attempts: int = 1
