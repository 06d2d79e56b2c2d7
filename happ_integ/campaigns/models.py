"""A campaign's statuses, settings and the messages its workflow exchanges.

    settings = CampaignSettings(max_concurrency=5, max_attempts=2)
    settings.handling(integration_handling)       # the CallHandling its calls run with
    CampaignRun(integration="sofa", campaign_id="cmp_…", settings=settings)   # starts `Campaign`

A recipient's status is its call's (`CallStatus`), or `pending` before its call starts,
`expired` when the campaign's `end_at` came first, `suppressed` when its number may not be
called. Fields added to a model here need a default: runs in flight carry the old shape.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from happ_integ.calls.config import CallHandling, CallingHours
from happ_integ.calls.models import FINAL_STATUSES, CallStatus


class CampaignStatus(StrEnum):
    SCHEDULED = "scheduled"  # before start_at
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"  # every recipient reached a final status
    CANCELLED = "cancelled"


CLOSED_CAMPAIGN = frozenset({CampaignStatus.FINISHED, CampaignStatus.CANCELLED})


class RecipientStatus(StrEnum):
    PENDING = "pending"  # its call not started yet
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    DIALING = "dialing"
    IN_PROGRESS = "in_progress"
    WAITING_POSTCALL = "waiting_postcall"
    ANALYZING = "analyzing"
    COMPLETED = "completed"
    EXHAUSTED = "exhausted"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # the campaign's end_at came before its call was dialled
    SUPPRESSED = "suppressed"  # its number may not be called


FINAL_RECIPIENT = frozenset(
    {RecipientStatus(s.value) for s in FINAL_STATUSES} | {RecipientStatus.EXPIRED, RecipientStatus.SUPPRESSED}
)
# What `retry` starts again when the request names no filter.
RETRY_STATUSES = (RecipientStatus.EXHAUSTED, RecipientStatus.FAILED)
RETRY_OUTCOMES = ("no_conversation",)
MAX_RECIPIENTS_PER_REQUEST = 10_000


class CampaignSettings(BaseModel):
    """What a campaign's creator chose; None: the integration's `call_handling` decides."""

    start_at: datetime | None = None
    end_at: datetime | None = None
    max_concurrency: int | None = Field(default=None, ge=1, le=1000)
    calling_hours: CallingHours | None = None
    max_attempts: int | dict[str, int] | None = None
    retry_delays_seconds: list[int] | dict[str, list[int]] | None = None

    def overrides(self) -> dict[str, Any]:
        """The `call_handling` fields this campaign replaces, as its calls take them."""
        chosen = {
            "calling_hours": self.calling_hours,
            "max_attempts": self.max_attempts,
            "retry_delays_seconds": self.retry_delays_seconds,
        }
        return {
            k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in chosen.items() if v is not None
        }

    def handling(self, base: CallHandling) -> CallHandling:
        """`base` with this campaign's overrides applied (validated as `call_handling` is)."""
        return base.with_overrides(self.overrides())


class LiveCall(BaseModel):
    """A started call of the campaign, as the `Campaign` workflow follows it."""

    recipient_id: str
    status: RecipientStatus = RecipientStatus.PENDING
    attempt: int = 0
    held_by_cap: bool = False  # scheduled until a contact_policy cap frees its number


class CampaignRun(BaseModel):
    """The input of a `Campaign` workflow run, carried over each continue-as-new."""

    integration: str
    campaign_id: str
    settings: CampaignSettings = Field(default_factory=CampaignSettings)
    paused: bool = False
    cancel_requested: bool = False
    live: dict[str, LiveCall] = Field(default_factory=dict, description="call id → the call, until it ends")
    continue_after_events: int | None = Field(
        default=None, description="continue-as-new past this many events (default: when Temporal suggests)"
    )


class CallProgress(BaseModel):
    """The `call_progress` signal a campaign's call sends its `Campaign` at each status change."""

    call_id: str
    status: CallStatus
    attempt: int = 0
    held_by_cap: bool = Field(
        default=False,
        description="scheduled because a contact_policy cap holds its number back (hours, maybe a "
        "day): until then it wants no slot, and the campaign's window goes on to other recipients",
    )


class StartedCalls(BaseModel):
    """What `campaign.start_calls` answers: the calls it started, by call id → recipient id."""

    started: dict[str, str] = Field(default_factory=dict)
    more: bool = Field(default=False, description="pending recipients are left")


class StartCalls(BaseModel):
    integration: str
    campaign_id: str
    limit: int
    settings: CampaignSettings = Field(default_factory=CampaignSettings)
    started: list[str] = Field(
        default_factory=list,
        description="calls the campaign started whose recipient is still pending (their first status not "
        "written yet): not started again",
    )


class CampaignRef(BaseModel):
    integration: str
    campaign_id: str


class CampaignStatusChange(BaseModel):
    integration: str
    campaign_id: str
    status: CampaignStatus
    cancel_requested: bool = False


class StopCalls(BaseModel):
    """`campaign.stop_calls`: end the campaign's calls not yet dialled (and its pending recipients)
    as `cancelled`, or `expired` when the campaign's end_at came."""

    integration: str
    campaign_id: str
    call_ids: list[str]
    expired: bool = False


class CampaignAnswer(BaseModel):
    """What pause, resume and cancel answer: the campaign's status once the change is in force."""

    campaign_id: str
    status: CampaignStatus
    cancel_requested: bool = False
