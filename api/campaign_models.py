"""The bodies of the campaign routes (`api.routes.campaigns`), as the OpenAPI document shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from happ_integ.calls.config import CallHandling, CallingHours
from happ_integ.campaigns.models import (
    MAX_RECIPIENTS_PER_REQUEST,
    CampaignSettings,
    CampaignStatus,
    RecipientStatus,
)
from happ_integ.campaigns.recipients import RecipientIn, Rejected

RECIPIENTS = Field(
    min_length=1,
    max_length=MAX_RECIPIENTS_PER_REQUEST,
    description=f"up to {MAX_RECIPIENTS_PER_REQUEST:,}; more is refused whole and nothing is stored",
)


class CampaignCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["Webinar 12 Dec"])
    recipients: list[RecipientIn] = RECIPIENTS
    start_at: AwareDatetime | None = Field(default=None, description="no dial before this")
    end_at: AwareDatetime | None = Field(
        default=None, description="nothing new is dialled after this; the rest end `expired`"
    )
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="this campaign's calls dialling or talking at once (default: the integration's "
        "concurrency_limit, which still holds for all its calls together)",
    )
    calling_hours: CallingHours | None = Field(default=None, description="replaces call_handling's")
    max_attempts: int | dict[str, int] | None = Field(
        default=None, description="replaces call_handling's (a number, or one per outcome)"
    )
    retry_delays_seconds: list[int] | dict[str, list[int]] | None = Field(
        default=None, description="replaces call_handling's (a list, or one per outcome)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> CampaignCreate:
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValueError("end_at must be after start_at")
        # Checked as call_handling checks them: the same limits and the same messages.
        chosen = {"max_attempts": self.max_attempts, "retry_delays_seconds": self.retry_delays_seconds}
        CallHandling.model_validate({k: v for k, v in chosen.items() if v is not None})
        return self

    def settings(self) -> CampaignSettings:
        return CampaignSettings(
            start_at=self.start_at,
            end_at=self.end_at,
            max_concurrency=self.max_concurrency,
            calling_hours=self.calling_hours,
            max_attempts=self.max_attempts,
            retry_delays_seconds=self.retry_delays_seconds,
        )


class RecipientsAppend(BaseModel):
    recipients: list[RecipientIn] = RECIPIENTS


class CampaignCreated(BaseModel):
    campaign_id: str
    accepted: int = Field(description="how many recipients were stored")
    rejected: list[Rejected] = Field(default_factory=list)


class CampaignView(BaseModel):
    campaign_id: str
    name: str
    status: CampaignStatus
    cancel_requested: bool = Field(default=False, description="cancelled once its calls on the line end")
    created_at: datetime
    start_at: datetime | None = None
    end_at: datetime | None = None
    max_concurrency: int | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="recipients by status")
    outcomes: dict[str, int] = Field(default_factory=dict, description="answered calls by analysis outcome")
    total: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None


class CampaignPage(BaseModel):
    campaigns: list[CampaignView]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for the next page")


class RecipientRow(BaseModel):
    recipient_id: str
    phone_masked: str
    status: RecipientStatus
    outcome: str | None = None
    attempts: int = 0
    call_id: str | None = None
    summary: str | None = Field(default=None, description="the analysis' summary of its call")
    reason: str | None = Field(
        default=None,
        description="why it is where it is: why its call ended so, which cap holds it back, or what it waits for",
    )
    variables: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    last_attempt_at: datetime | None = None
    updated_at: datetime


class RecipientPage(BaseModel):
    recipients: list[RecipientRow]
    next_cursor: str | None = None


class RetryFilter(BaseModel):
    """Which finished recipients get a new call; empty: `exhausted`, `failed` and outcome `no_conversation`."""

    statuses: list[RecipientStatus] | None = Field(default=None, max_length=20)
    outcomes: list[str] | None = Field(default=None, max_length=20)


class RetryAnswer(BaseModel):
    campaign_id: str
    retried: int = Field(description="recipients that get a new call")
    status: CampaignStatus
