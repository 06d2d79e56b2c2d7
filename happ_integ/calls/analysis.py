"""What a call came to: one `CallAnalysis` shape for every integration's postcall handler.

    analysis = CallAnalysis(outcome="callback", summary="Просить передзвонити завтра", callback_at=...)
    fallback = from_elevenlabs(info)            # ElevenLabs' own analysis mapped onto the same shape

The analysis model (an OpenAI-compatible LLM) fills it from the transcript; when it is not
configured, or its answer is invalid twice, ElevenLabs' `analysis` and `data_collection_results`
fill it instead, so the postcall handler always gets one. A key the schema does not ask for (a
model without strict structured outputs adds some) is dropped, not a reason to ask again:

    answer = parse_answer(model, content)   # answer.analysis, answer.dropped == ["extracted.mood"]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from happ_integ.calls.models import OUTCOMES, AnalysisOutcome, CallAnalysis, PostcallInfo

__all__ = [
    "DEFAULT_PROMPT",
    "OUTCOMES",
    "AnalysisConfig",
    "Answer",
    "CallAnalysis",
    "answer_model",
    "from_elevenlabs",
    "parse_answer",
    "read_answer",
    "response_schema",
    "transcript_text",
]

DEFAULT_PROMPT = (
    "You analyse the transcript of an outbound sales call made by a voice agent. Decide the outcome: "
    "interested (the client wants what was offered), not_interested (they refused), callback (they asked "
    "to be called again; give callback_at when they named a time), wrong_number (not the person or not a "
    "client), voicemail (an answering machine), no_conversation (nobody really talked), do_not_call (they "
    "asked not to be called again: their number goes on the do-not-call list). Write `summary` "
    "in the language of the transcript (Ukrainian or Russian), two sentences at most, and `next_action` "
    "for the sales team. Fill `extracted` with the fields asked for, null when the call did not say."
)


class AnalysisConfig(BaseModel):
    """The `analysis` config: the prompt and the fields to extract (`{"webinar": "will attend the webinar: yes/no"}`)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(default=DEFAULT_PROMPT, min_length=10, max_length=8000)
    extracted_fields: dict[str, str] = Field(default_factory=dict, max_length=30)


_SUCCESSFUL = {
    "success": "interested",
    "yes": "interested",
    "failure": "not_interested",
    "no": "not_interested",
}


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


def answer_model(config: AnalysisConfig) -> type[BaseModel]:
    """The pydantic model the analysis model must answer with; its JSON schema is the request's
    `response_format`. Every field is required (null where unknown) and nothing else is allowed,
    as OpenAI's strict structured outputs demand; `extracted` has one field per configured name."""
    extracted = create_model(  # type: ignore[call-overload]
        "Extracted",
        __config__=ConfigDict(extra="forbid", populate_by_name=True),
        **{
            f"f{i}": (str | None, Field(alias=name, description=description))
            for i, (name, description) in enumerate(config.extracted_fields.items())
        },
    )
    return create_model(  # type: ignore[call-overload,no-any-return]
        "CallAnalysisAnswer",
        __config__=ConfigDict(extra="forbid"),
        outcome=(AnalysisOutcome, Field(description="one of " + ", ".join(OUTCOMES))),
        summary=(str, Field(description="two sentences at most, in the transcript's language")),
        next_action=(str | None, Field(description="what the sales team should do next")),
        callback_at=(
            str | None,
            Field(description="ISO 8601 with a UTC offset, when the client asked to be called back"),
        ),
        extracted=(extracted, Field(description="the fields asked for; null when the call did not say")),
    )


@dataclass(frozen=True)
class Answer:
    """A model's answer read: the analysis, and the keys it had that the schema does not ask for
    (dotted paths such as `extracted.mood`), dropped."""

    analysis: CallAnalysis
    dropped: list[str] = field(default_factory=list)


def read_answer(model: type[BaseModel], content: str) -> CallAnalysis:
    """The model's answer as a `CallAnalysis`, or `ValueError` saying what is wrong with it."""
    return parse_answer(model, content).analysis


def parse_answer(model: type[BaseModel], content: str) -> Answer:
    """`read_answer`, also naming the keys it dropped.

    The schema sent to the model forbids other keys (OpenAI's strict mode needs
    `additionalProperties: false`), but a model without strict structured outputs adds some anyway.
    Those are removed and the rest validated again, so only a missing or invalid field asked for
    is a `ValidationError` (whose first error is then that field, not an extra key).
    """
    try:
        answer = model.model_validate_json(content)
        dropped: list[tuple[str | int, ...]] = []
    except ValidationError as exc:
        dropped = [tuple(error["loc"]) for error in exc.errors() if error["type"] == "extra_forbidden"]
        if not dropped:
            raise
        # An extra key was found, so the content is a JSON object: drop those keys, validate again.
        data = json.loads(content)
        for path in dropped:
            _drop(data, path)
        answer = model.model_validate_json(json.dumps(data))
    data = answer.model_dump(by_alias=True)
    callback_at = data["callback_at"]
    if callback_at is not None:
        moment = datetime.fromisoformat(callback_at)
        if moment.tzinfo is None:
            raise ValueError("callback_at needs a UTC offset, e.g. 2026-01-21T10:00:00+02:00")
        callback_at = moment
    analysis = CallAnalysis(
        outcome=data["outcome"],
        summary=data["summary"],
        next_action=data["next_action"],
        callback_at=callback_at,
        extracted=data["extracted"],
        source="llm",
    )
    return Answer(analysis, [".".join(str(part) for part in path) for path in dropped])


def _drop(data: Any, path: tuple[str | int, ...]) -> None:
    """Remove the key at `path` (`("extracted", "mood")`) from nested JSON objects, if it is there."""
    *parents, last = path
    for part in parents:
        data = data.get(part) if isinstance(data, dict) else None
    if isinstance(data, dict):
        data.pop(last, None)


def transcript_text(document: dict[str, Any] | None, max_chars: int = 40_000) -> str:
    """`agent: …` / `user: …` lines of a stored conversation; the newest part when it is too long."""
    body = (document or {}).get("body") or {}
    turns = body.get("transcript") if isinstance(body, dict) else None
    lines = [
        f"{turn.get('role', '?')}: {turn.get('message') or ''}".strip()
        for turn in (turns if isinstance(turns, list) else [])
        if isinstance(turn, dict)
    ]
    text = "\n".join(line for line in lines if line)
    return text[-max_chars:]


def response_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema with its definitions written in place: one self-contained object."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(
                    {
                        **definitions[ref.removeprefix("#/$defs/")],
                        **{k: v for k, v in node.items() if k != "$ref"},
                    }
                )
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)  # type: ignore[no-any-return]
