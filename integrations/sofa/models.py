"""What the handlers answer besides the call flow's own models (`happ_integ.calls.models`).

Only pydantic models here: this module is shared with the workflow sandbox as it is.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class PostcallResult(BaseModel):
    """What crm-postcall wrote to the lead's record: `written` names "status", "call_log", "comment"."""

    success: bool
    record_id: str | None = None
    status: str | None = Field(default=None, description="the value written into the status field")
    written: list[str] = Field(default_factory=list)
    note: str | None = None
