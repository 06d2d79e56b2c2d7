"""Config models and their defaults: `PUT /sofa/config/crm_fields {"status": "Стан"}` changes one field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CrmFields(BaseModel):
    """NetHunt field names of the lead folder: from config, never hard-coded in handlers."""

    phone: str = "Phone"
    name: str = "Name"
    company: str = "Company"
    source: str = "Source"
    status: str = "Status"


_SUCCESS = frozenset({"success", "yes", "true"})
_FAILURE = frozenset({"failure", "no", "false"})


class StatusMap(BaseModel):
    """The value written into the status field, by ElevenLabs' `call_successful`.

    More outcomes may be added as extra keys (`{"callback": "Call back"}`): an outcome named by
    one gets its value.
    """

    model_config = ConfigDict(extra="allow")

    success: str = "Interested"
    failure: str = "Not interested"
    unknown: str = "Called"

    def value_for(self, call_successful: str | None) -> str:
        """`value_for("success")` → "Interested"; "yes"/"true" are success, "no"/"false" failure;
        anything else, or None, is unknown."""
        outcome = (call_successful or "").strip().lower()
        if outcome in _SUCCESS:
            return self.success
        if outcome in _FAILURE:
            return self.failure
        extra = (self.model_extra or {}).get(outcome)
        if isinstance(extra, str) and extra:
            return extra
        return self.unknown


DEFAULT_CONFIGS = {"crm_fields": CrmFields(), "status_map": StatusMap()}
