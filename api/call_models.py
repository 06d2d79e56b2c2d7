"""The bodies of the call flow's standard webhooks, as the senders send them.

- call-originate: `{"phone_number": "+380…"}` or `{"calls": [{"phone_number": …}, …]}`;
- call-events (the voice assistant): `{"eventType", "callId", "conversation_id", "duration", "metadata"}`;
- agent-init (the ElevenLabs agent, before it speaks): `{"phone_number"}` or ElevenLabs' own
  `{"caller_id", "agent_id", "called_number", "call_sid"}`;
- agent-postcall (ElevenLabs, signed): `{"type", "event_timestamp", "data"}`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from happ_integ.calls.models import CallEvent

PHONE = Field(min_length=1, max_length=32, examples=["+380994829573"])
ID = Field(min_length=1, max_length=128)


class OriginateItem(BaseModel):
    phone_number: str = PHONE
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="kept with the call, passed to the lookup"
    )


class OriginateRequest(BaseModel):
    """One call (`phone_number`), or a batch of up to 1,000 (`calls`)."""

    phone_number: str | None = Field(default=None, min_length=1, max_length=32, examples=["+380994829573"])
    metadata: dict[str, Any] = Field(default_factory=dict)
    calls: list[OriginateItem] | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_or_a_batch(self) -> OriginateRequest:
        if (self.phone_number is None) == (self.calls is None):
            raise ValueError("send either phone_number (one call) or calls (a batch)")
        return self


class OriginateResult(BaseModel):
    success: bool
    callId: str | None = None
    error: str | None = None
    existing: bool = Field(default=False, description="the number already had a call in flight: its id")


class BatchOriginateResult(BaseModel):
    success: bool = True
    calls: list[OriginateResult] = Field(description="one result per requested call, in order")


class CallEventsPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    eventType: Literal["call_start", "call_end"]
    callId: str = Field(min_length=1, max_length=128, description="our call id, or the voice assistant's")
    conversation_id: str | None = Field(default=None, max_length=128)
    duration: float | None = Field(default=None, ge=0, le=86400, description="seconds, with call_end")
    provider_call_id: str | None = Field(
        default=None,
        max_length=128,
        description="the voice assistant's id of the call (also read from metadata.provider_call_id): "
        "an event whose id is not the one the call's attempt got at originate is refused (409)",
    )
    metadata: dict[str, Any] | None = None

    def as_event(self, provider_call_id: str | None) -> CallEvent:
        meta = self.metadata or {}
        status = meta.get("status")
        provider = self.provider_call_id or meta.get("provider_call_id") or provider_call_id
        return CallEvent(
            event_type=self.eventType,
            duration=self.duration,
            conversation_id=self.conversation_id,
            provider_call_id=str(provider)[:128] if provider else None,
            provider_status=str(status)[:32] if status else None,
        )


class AgentInitPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    phone_number: str | None = Field(default=None, max_length=64)
    called_number: str | None = Field(
        default=None, max_length=64, description="ElevenLabs: the number called"
    )
    caller_id: str | None = Field(default=None, max_length=64)
    call_id: str | None = Field(default=None, max_length=128)
    agent_id: str | None = Field(default=None, max_length=128)
    call_sid: str | None = Field(default=None, max_length=128)


class AgentInitResponse(BaseModel):
    type: Literal["conversation_initiation_client_data"] = "conversation_initiation_client_data"
    dynamic_variables: dict[str, Any]


class PostcallWebhook(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=64, examples=["post_call_transcription"])
    event_timestamp: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class PostcallReply(BaseModel):
    success: bool = True
    status: str | None = Field(default=None, description="the call's status after this webhook")
    message: str = ""
    stored: str | None = Field(
        default=None, description="the document kept for a webhook that matched no call"
    )
