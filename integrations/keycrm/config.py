"""Config models and their defaults: `happ config set keycrm status_map '{"callback": 15}'` changes one status.

The StatusMap defaults are the demo pipeline's statuses (`simulator.keycrm.seed_demo`); a real
account's status ids are read with `GET /pipelines/{id}/statuses` and set once in `status_map`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from happ_integ import OUTCOMES


class KeyCrmSettings(BaseModel):
    """Where the called buyers' cards are and what is read from and written to them."""

    model_config = ConfigDict(extra="forbid")

    pipeline_id: int | None = Field(
        default=None, description="the pipeline whose cards are called; None: any"
    )
    custom_fields: dict[str, str] = Field(
        default_factory=dict,
        max_length=30,
        description="dynamic variable name → KeyCRM custom field uuid, read from the card or else the buyer",
    )
    note_field: str | None = Field(
        default=None,
        max_length=100,
        description="a card custom field uuid for the summary; None: the card's note",
    )
    requests_per_minute: int = Field(
        default=60, ge=1, le=6000, description="the API key's request budget, shared by every worker"
    )


_SUCCESS = frozenset({"success", "yes", "true"})
_FAILURE = frozenset({"failure", "no", "false"})


class StatusMap(BaseModel):
    """The KeyCRM pipeline status id a card is moved to, by the call's analysed outcome; None: not moved."""

    model_config = ConfigDict(extra="forbid")

    interested: int | None = 102
    not_interested: int | None = 103
    callback: int | None = 104
    wrong_number: int | None = 105
    voicemail: int | None = 106
    no_conversation: int | None = 107
    do_not_call: int | None = 108

    def value_for(self, outcome: str | None, call_successful: str | None = None) -> int | None:
        """`value_for("callback", None)` → the callback status. Without an outcome (no analysis),
        ElevenLabs' `call_successful` decides: success (yes/true) → interested, failure (no/false)
        → not_interested, anything else → None (the card stays where it is)."""
        name = (outcome or "").strip().lower()
        if name:
            return getattr(self, name) if name in OUTCOMES else None
        verdict = (call_successful or "").strip().lower()
        if verdict in _SUCCESS:
            return self.interested
        if verdict in _FAILURE:
            return self.not_interested
        return None


DEFAULT_CONFIGS = {"keycrm": KeyCrmSettings(), "status_map": StatusMap()}
