"""What the handlers answer besides the call flow's own models (`happ_integ.calls.models`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PostcallResult(BaseModel):
    """What crm-postcall wrote to the card: `written` names "status" and "summary"."""

    success: bool
    record_id: str | None = None
    status_id: int | None = Field(default=None, description="the KeyCRM status the card was moved to")
    outcome: str | None = Field(default=None, description="the call's outcome the status was mapped from")
    written: list[str] = Field(default_factory=list)
    note: str | None = None
