"""Config models and their defaults."""

from __future__ import annotations

from pydantic import BaseModel


class CallLimits(BaseModel):
    """What test-call reads from the `call_handling` key. The example has no call flow: this is not
    the call flow's `happ_integ.CallHandling`, only the limit test-call checks (and a few fields
    kept for the stored default's shape)."""

    concurrency_limit: int = 3
    short_call_seconds: int = 5
    max_attempts: int = 3
    retry_delays_seconds: list[int] = [600, 1800, 3600]


class CrmFields(BaseModel):
    """NetHunt field names: from config, never hard-coded in handlers."""

    phone: str = "Phone"
    name: str = "Name"
    company: str = "Company"
    source: str = "Source"


DEFAULT_CONFIGS = {"call_handling": CallLimits(), "crm_fields": CrmFields()}
