"""The messages that cross the boundary between the call's workflows, its activities and the
client that starts it: each a pydantic model, carried by Temporal as a payload.

    CallRequest(integration="sofa", call_id="c_…", phone_number="+380994829573")   # starts OutboundCall
    CallBegin / CallRecord                   # call.begin's answer; one status change for call.record
    OriginateCall -> Originated              # voice.originate
    ConversationRequest -> ConversationStatus   # elevenlabs.get_conversation / conversation_status
    AnalysisRequest                          # analysis.analyze
    QueueRef, WorkflowIds, SlotRequest/SlotGrant/SlotRelease   # the CallQueue and its signals
    CallControl                              # what a call activity may ask of the Temporal client

The call's state, its events and its handlers' payloads are in `happ_integ.calls.models`. A field
added to one of these must have a default: runs in flight carry the old shape in their history.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from happ_integ.calls.clock import ZonesUsed
from happ_integ.calls.config import CallHandling
from happ_integ.calls.models import CallStatus, Outcome, PostcallInfo

# Starting a call ----------------------------------------------------------------------------------


class CallRequest(BaseModel):
    """The input of an `OutboundCall` workflow."""

    integration: str
    call_id: str
    phone_number: str = Field(description="E.164")
    metadata: dict[str, Any] = Field(default_factory=dict)
    not_before: datetime | None = Field(
        default=None, description="no attempt before this (a callback's time)"
    )
    previous_call_id: str | None = Field(default=None, description="the call that asked for this one")
    campaign_id: str | None = Field(default=None, description="the campaign this call is one recipient's of")
    recipient_id: str | None = None
    variables: dict[str, Any] = Field(
        default_factory=dict, description="the recipient's own dynamic variables: they win over the lookup's"
    )
    handling_overrides: dict[str, Any] = Field(
        default_factory=dict, description="call_handling fields the campaign replaces"
    )
    max_concurrency: int | None = Field(default=None, description="the campaign's share of the slots")


class CallFlowHandlers(BaseModel):
    """The names of the handlers a call runs, from the integration's `call_flow` (None: none)."""

    lookup: str | None = None
    postcall: str | None = None


class CallBegin(BaseModel):
    """What the first activity of a call returns: the options it runs with."""

    handling: CallHandling
    call_flow: CallFlowHandlers | None = Field(
        default=None, description="None in histories recorded before it was returned: read from the registry"
    )
    zones: ZonesUsed | None = Field(
        default=None,
        description="the zones its calling hours are read in (None in histories recorded before: "
        "calling_hours.timezone)",
    )


class DialCheck(BaseModel):
    """`call.may_dial`: asked right before each dial, with a slot held."""

    integration: str
    call_id: str
    phone_number: str
    attempt: int


class DialPermit(BaseModel):
    """Whether the attempt may dial now: not when the number is on the do-not-call list
    (`suppressed`, the call ends), nor when a contact cap holds it back (`next_allowed_at`)."""

    allowed: bool = True
    suppressed: bool = False
    next_allowed_at: datetime | None = None
    reason: str | None = None


class CallRecord(BaseModel):
    """One status change, as written to `{integration}_calls`."""

    integration: str
    call_id: str
    status: CallStatus
    attempt: int = 0
    next_attempt_at: datetime | None = None
    provider_call_id: str | None = None
    conversation_id: str | None = None
    outcome: Outcome | None = None
    reason: str | None = None
    variables: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    campaign_id: str | None = Field(default=None, description="a campaign call: its recipient is updated too")
    analysis_outcome: str | None = None
    summary: str | None = None


# The call's activities ------------------------------------------------------------------------------


class OriginateCall(BaseModel):
    integration: str
    call_id: str
    phone_number: str
    attempt: int
    variables: dict[str, Any] = Field(default_factory=dict)
    provider: Literal["happ_voice", "elevenlabs_sip", "elevenlabs_twilio"] = "happ_voice"


class Originated(BaseModel):
    provider_call_id: str | None = None
    conversation_id: str | None = Field(default=None, description="ElevenLabs' id, when ElevenLabs dials")
    uncertain: bool = Field(default=False, description="an earlier try was cut short; it may have dialled")


class ConversationRequest(BaseModel):
    integration: str
    call_id: str
    conversation_id: str


class ConversationStatus(BaseModel):
    """Where an ElevenLabs conversation stands: `status` as its API says ("initiated",
    "in-progress", "processing", "done", "failed"; None when it knows no such conversation), and
    `info` once it is done (the transcript stored like a post-call webhook's)."""

    status: str | None = None
    info: PostcallInfo | None = None


class AnalysisRequest(BaseModel):
    integration: str
    call_id: str
    info: PostcallInfo


# The integration's CallQueue --------------------------------------------------------------------------


class QueueRef(BaseModel):
    integration: str


class WorkflowIds(BaseModel):
    ids: list[str]


class SlotPriority(IntEnum):
    """Who is served first when slots free up (lower first): calls a person asked for (a single
    call-originate, a callback the analysis scheduled), then retries of any call, then a
    campaign's fresh recipients."""

    PERSON = 0
    RETRY = 1
    CAMPAIGN = 2


class SlotRequest(BaseModel):
    holder: str = Field(description="the OutboundCall's workflow id")
    attempt: int
    priority: SlotPriority = SlotPriority.PERSON
    campaign_id: str | None = Field(default=None, description="the campaign the call belongs to")
    share: int | None = Field(
        default=None, description="the campaign's max_concurrency: its slots at most, whatever is free"
    )


class SlotGrant(BaseModel):
    attempt: int


class SlotRelease(BaseModel):
    holder: str
    attempt: int


class QueueState(BaseModel):
    """A `CallQueue`'s whole state, carried over each continue-as-new."""

    integration: str
    capacity: int = 3
    holders: dict[str, int] = Field(
        default_factory=dict, description="workflow id → the attempt holding a slot"
    )
    holder_campaigns: dict[str, str] = Field(
        default_factory=dict, description="workflow id → the campaign of a holder that has one"
    )
    waiters: list[SlotRequest] = Field(
        default_factory=list, description="in arrival order; served by priority, then campaigns in turn"
    )
    paused_campaigns: list[str] = Field(
        default_factory=list, description="campaigns whose calls get no slot until resumed"
    )
    last_campaign: str | None = Field(
        default=None, description="the campaign served last, so the next turn goes to the one after it"
    )
    granted_total: int = 0
    continue_after_events: int | None = Field(
        default=None, description="continue-as-new past this many events (default: when Temporal suggests)"
    )


class CampaignGate(BaseModel):
    """The `campaign_gate` signal to a `CallQueue`: hold back (paused) or serve again a campaign's calls."""

    campaign_id: str
    paused: bool


class CallControl(Protocol):
    """What the call's and campaign's activities may ask of the Temporal client: start a call (a
    callback, a campaign's recipient), start the integration's queue, hand a call the post-call
    webhooks that came before it knew its conversation, cancel a call. The worker gives `activities.calls.CallActivities` one (`control.client`), so the
    activities need no client-side module."""

    async def start_call(self, request: CallRequest) -> None: ...

    async def start_call_queue(self, integration: str) -> None: ...

    async def apply_stored_webhooks(self, integration: str, call_id: str, conversation_id: str) -> int: ...

    async def cancel_call(self, integration: str, call_id: str) -> bool:
        """No further attempt for the call (False: it had ended)."""
        ...
