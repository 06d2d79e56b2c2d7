"""Config models and their defaults: `happ config set sofa crm_fields '{"status": "Стан"}'` changes one field.

Only pydantic models here: this module is shared with the workflow sandbox as it is.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from happ_integ import OUTCOMES


class CrmFields(BaseModel):
    """NetHunt field names of the lead folder: from config, never hard-coded in handlers."""

    phone: str = "Phone"
    name: str = "Name"
    company: str = "Company"
    source: str = "Source"
    status: str = "Status"
    # The lead's own time zone (an IANA name such as Europe/Warsaw), for calling hours read in the
    # callee's zone (`calling_hours.timezone: "recipient"`): unset, the number's zone is used.
    timezone: str | None = None


_SUCCESS = frozenset({"success", "yes", "true"})
_FAILURE = frozenset({"failure", "no", "false"})


class StatusMap(BaseModel):
    """The value written into the status field: by the analysis `outcome` of the call, or, when a
    call has no analysis, by ElevenLabs' `call_successful` (success / failure / unknown; yes and no
    mean success and failure)."""

    model_config = ConfigDict(extra="forbid")

    interested: str = "Interested"
    not_interested: str = "Not interested"
    callback: str = "Call back"
    wrong_number: str = "Wrong number"
    voicemail: str = "Voicemail"
    no_conversation: str = "Called"
    do_not_call: str = "Do not call"
    success: str = "Interested"
    failure: str = "Not interested"
    unknown: str = "Called"

    def value_for(self, outcome: str | None, call_successful: str | None = None) -> str:
        """`value_for("callback")` → "Call back"; `value_for(None, "yes")` → "Interested"."""
        key = (outcome or "").strip().lower()
        if key in OUTCOMES:
            return str(getattr(self, key))
        verdict = (call_successful or key).strip().lower()
        if verdict in _SUCCESS:
            return self.success
        if verdict in _FAILURE:
            return self.failure
        return self.unknown


DEFAULT_CONFIGS = {"crm_fields": CrmFields(), "status_map": StatusMap()}
