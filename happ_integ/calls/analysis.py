"""What a call came to: one `CallAnalysis` shape for every integration's postcall handler.

    analysis = CallAnalysis(outcome="callback", summary="Просить передзвонити завтра", callback_at=...)
    fallback = from_elevenlabs(info)            # ElevenLabs' own analysis mapped onto the same shape

The analysis model (an OpenAI-compatible LLM) fills it from the transcript; when it is not
configured, or its answer is invalid twice, ElevenLabs' `analysis` and `data_collection_results`
fill it instead, so the postcall handler always gets one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from happ_integ.calls.models import OUTCOMES, CallAnalysis, PostcallInfo

__all__ = ["DEFAULT_PROMPT", "OUTCOMES", "AnalysisConfig", "CallAnalysis", "from_elevenlabs"]

DEFAULT_PROMPT = (
    "You analyse the transcript of an outbound sales call made by a voice agent. Decide the outcome: "
    "interested (the client wants what was offered), not_interested (they refused), callback (they asked "
    "to be called again; give callback_at when they named a time), wrong_number (not the person or not a "
    "client), voicemail (an answering machine), no_conversation (nobody really talked). Write `summary` "
    "in the language of the transcript (Ukrainian or Russian), two sentences at most, and `next_action` "
    "for the sales team. Fill `extracted` with the fields asked for, null when the call did not say."
)


class AnalysisConfig(BaseModel):
    """The `analysis` config: the prompt and the fields to extract (`{"webinar": "will attend the webinar: yes/no"}`)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(default=DEFAULT_PROMPT, min_length=10, max_length=8000)
    extracted_fields: dict[str, str] = Field(default_factory=dict, max_length=30)


_SUCCESSFUL = {"success": "interested", "yes": "interested", "failure": "not_interested", "no": "not_interested"}


def from_elevenlabs(info: PostcallInfo | None) -> CallAnalysis:
    """ElevenLabs' own analysis as a `CallAnalysis`: `call_successful` decides the outcome."""
    if info is None:
        return CallAnalysis(outcome="no_conversation", source="elevenlabs")
    verdict = (info.call_successful or "").strip().lower()
    outcome = _SUCCESSFUL.get(verdict, "no_conversation")
    return CallAnalysis(
        outcome=outcome,  # type: ignore[arg-type]
        summary=info.transcript_summary or "",
        extracted=dict(info.data_collection_results),
        source="elevenlabs",
    )
