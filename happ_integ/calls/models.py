"""What crosses the boundaries of an outbound call: its state, its messages, its handlers' payloads.

    CallRequest(integration="sofa", call_id="c_…", phone_number="+380994829573")   # starts OutboundCall
    CallEvent(event_type="call_end", duration=45)                                  # the call-events update
    LookupPayload / LookupResult                      # the integration's `call_flow.lookup` handler
    PostcallPayload                                   # the integration's `call_flow.postcall` handler

Transcripts and audio never appear here: they are stored in PostgreSQL and named by document id.
"""

from __future__ import annotations

import typing
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field


class CallStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for the calling window or a retry delay
    QUEUED = "queued"  # waiting for a concurrency slot
    DIALING = "dialing"
    IN_PROGRESS = "in_progress"
    WAITING_POSTCALL = "waiting_postcall"
    ANALYZING = "analyzing"
    COMPLETED = "completed"
    EXHAUSTED = "exhausted"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"  # its number was on the do-not-call list when its turn came: never dialled


FINAL_STATUSES = frozenset(
    {
        CallStatus.COMPLETED,
        CallStatus.EXHAUSTED,
        CallStatus.FAILED,
        CallStatus.CANCELLED,
        CallStatus.SUPPRESSED,
    }
)


class Outcome(StrEnum):
    """How one attempt ended."""

    ANSWERED = "answered"
    SHORT = "short"  # answered, but shorter than short_call_seconds (or ended without a call_start)
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # the voice assistant reported the call as failed
    RING_TIMEOUT = "ring_timeout"
    ORIGINATE_FAILED = "originate_failed"  # the voice assistant could not be reached


class Attempt(BaseModel):
    number: int
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    outcome: Outcome | None = None
    provider_call_id: str | None = None
    conversation_id: str | None = None
    error: str | None = None
    reason: str | None = Field(default=None, description="the rule that decided what came after it")


AnalysisOutcome = Literal[
    "interested", "not_interested", "callback", "wrong_number", "voicemail", "no_conversation", "do_not_call"
]
OUTCOMES: tuple[str, ...] = typing.get_args(AnalysisOutcome)


class CallAnalysis(BaseModel):
    """What the call came to, from the analysis model or from ElevenLabs (`happ_integ.calls.analysis`)."""

    outcome: AnalysisOutcome
    summary: str = Field(default="", max_length=4000, description="in the transcript's language")
    next_action: str | None = Field(default=None, max_length=2000)
    callback_at: datetime | None = Field(
        default=None, description="ISO 8601 with offset, for outcome callback"
    )
    extracted: dict[str, Any] = Field(default_factory=dict, description="the integration's fields")
    source: Literal["llm", "elevenlabs"] = "llm"


class PostcallInfo(BaseModel):
    """What the post-call webhook (or the ElevenLabs API) said about the conversation."""

    conversation_id: str | None = None
    document_id: str | None = Field(default=None, description="the stored conversation (transcript)")
    duration_seconds: float | None = None
    call_successful: str | None = None
    transcript_summary: str | None = None
    data_collection_results: dict[str, Any] = Field(default_factory=dict)
    source: Literal["webhook", "api"] = "webhook"


class CallState(BaseModel):
    """The call as `GET /{integration}/calls/{call_id}` shows it (a query on the workflow)."""

    call_id: str
    integration: str
    status: CallStatus = CallStatus.SCHEDULED
    attempt: int = 0
    attempts: list[Attempt] = Field(default_factory=list)
    next_attempt_at: datetime | None = None
    phone_masked: str = ""
    provider_call_id: str | None = None
    conversation_id: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict, description="the lookup's dynamic variables")
    record_id: str | None = Field(default=None, description="the CRM record the lookup found")
    postcall: PostcallInfo | None = None
    audio_document_id: str | None = None
    analysis: CallAnalysis | None = None
    result: dict[str, Any] | None = Field(default=None, description="what the postcall handler answered")
    callback_call_id: str | None = Field(
        default=None, description="the call scheduled for the callback asked for"
    )
    previous_call_id: str | None = Field(default=None, description="the call whose callback this one is")
    reason: str | None = Field(default=None, description="why the call ended as it did")
    cancel_requested: bool = False
    campaign_id: str | None = Field(default=None, description="the campaign this call belongs to")
    recipient_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, description="what the call was started with")
    timezones: list[str] = Field(
        default_factory=list, description="the zones its calling hours are read in (all must be open)"
    )


class CallEvent(BaseModel):
    """A call-events webhook, as the workflow's `call_event` update takes it."""

    event_type: Literal["call_start", "call_end"]
    duration: float | None = None
    conversation_id: str | None = None
    provider_call_id: str | None = None
    provider_status: str | None = Field(default=None, description="metadata.status: no_answer, busy, failed")


class CallEventAnswer(BaseModel):
    """What call-events answers (`scheduledRetry`, `nextRetryAt` by alias): the workflow's own decision."""

    success: bool = True
    status: CallStatus
    scheduled_retry: bool = Field(
        default=False,
        validation_alias=AliasChoices("scheduled_retry", "scheduledRetry"),
        serialization_alias="scheduledRetry",
    )
    next_retry_at: datetime | None = Field(
        default=None,
        validation_alias=AliasChoices("next_retry_at", "nextRetryAt"),
        serialization_alias="nextRetryAt",
    )
    message: str = ""


class PostcallEvent(BaseModel):
    """A verified ElevenLabs post-call webhook, as the workflow's `postcall` update takes it."""

    type: Literal["post_call_transcription", "post_call_audio", "call_initiation_failure"]
    info: PostcallInfo = Field(default_factory=PostcallInfo)
    failure_reason: str | None = None
    audio_document_id: str | None = None


class PostcallAnswer(BaseModel):
    success: bool = True
    status: CallStatus
    message: str = ""


# The integration's handlers --------------------------------------------------------------------


class LookupPayload(BaseModel):
    """What the `call_flow.lookup` handler receives: the number to find in the CRM."""

    call_id: str | None = None
    phone_number: str = Field(description="E.164")
    metadata: dict[str, Any] = Field(default_factory=dict)


class LookupResult(BaseModel):
    """What it returns: the agent's dynamic variables and the record the postcall handler updates."""

    found: bool = False
    record_id: str | None = None
    variables: dict[str, str | int | float | bool] = Field(default_factory=dict)
    note: str | None = None


class PostcallPayload(BaseModel):
    """What the `call_flow.postcall` handler receives once a call was answered and analysed."""

    call_id: str
    phone_number: str
    attempt: int
    record_id: str | None = Field(default=None, description="from the lookup: no second CRM search")
    variables: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float = 0
    conversation_id: str | None = None
    transcript_document_id: str | None = Field(default=None, description="the stored transcript")
    call_successful: str | None = Field(default=None, description="ElevenLabs: success, failure or unknown")
    transcript_summary: str | None = None
    data_collection_results: dict[str, Any] = Field(default_factory=dict)
    analysis: CallAnalysis | None = Field(
        default=None, description="what the call came to: outcome, summary …"
    )
