"""crm-postcall: after an answered call, the card moved to the outcome's status and the summary written."""

from __future__ import annotations

from typing import Any

from happ_integ import Context, PostcallPayload, define_handler, mask_phone
from integrations.keycrm.config import KeyCrmSettings, StatusMap
from integrations.keycrm.models import PostcallResult

NOTE_SEPARATOR = "\n\n"


def outcome_of(p: PostcallPayload) -> str | None:
    """The analysed outcome, else ElevenLabs' own verdict (None when neither said anything)."""
    if p.analysis is not None:
        return p.analysis.outcome
    return p.call_successful or None


def summary_text(p: PostcallPayload) -> str | None:
    """What is written to the card: the analysis' summary and next action, else ElevenLabs' summary,
    headed by the attempt and outcome; None when the call left no summary at all."""
    analysis = p.analysis
    summary = (analysis.summary if analysis else "").strip()
    next_action = ((analysis.next_action if analysis else None) or "").strip()
    if not summary and not next_action:
        summary = (p.transcript_summary or "").strip()
    if not summary and not next_action:
        return None
    lines = [f"AI call, attempt {p.attempt}: {outcome_of(p) or 'unknown'}"]
    if summary:
        lines.append(summary)
    if next_action:
        lines.append(f"Next: {next_action}")
    return "\n".join(lines)


def with_note(existing: str | None, text: str) -> str:
    """The card's note with this call's summary added after what it already says."""
    before = (existing or "").rstrip()
    return f"{before}{NOTE_SEPARATOR}{text}" if before else text


# Eight tries over about three minutes: the call's outcome reaches a CRM that was down meanwhile.
@define_handler(name="crm-postcall", retries=8)
async def crm_postcall(ctx: Context[PostcallPayload]) -> PostcallResult:
    """Updates the card the lookup found (no second search), in one write: its status and its summary."""
    p = ctx.payload
    if not p.record_id:
        ctx.log.info("No KeyCRM card for this call: nothing written", {"phone": mask_phone(p.phone_number)})
        return PostcallResult(success=True, note="no KeyCRM card: nothing written")
    try:
        card_id = int(p.record_id)
    except ValueError:
        ctx.log.warning(
            "The call's record is not a KeyCRM card id: nothing written", {"record_id": p.record_id}
        )
        return PostcallResult(
            success=True, record_id=p.record_id, note="not a KeyCRM card id: nothing written"
        )

    settings = await ctx.config.get("keycrm", KeyCrmSettings)
    status_map = await ctx.config.get("status_map", StatusMap)
    outcome = outcome_of(p)
    status_id = status_map.value_for(p.analysis.outcome if p.analysis else None, p.call_successful)
    text = summary_text(p)
    crm = ctx.keycrm(per_minute=settings.requests_per_minute)

    note: str | None = None
    custom_fields: dict[str, Any] = {}
    if text is not None and settings.note_field:
        custom_fields[settings.note_field] = text
    elif text is not None:
        # The note keeps what the managers wrote: this call's summary is added after it.
        card: dict[str, Any] | None = await ctx.step.run(
            "keycrm.get_card",
            lambda: crm.get_card(card_id),
            input={"card_id": card_id},
            transform=lambda found: {"found": found is not None},
        )
        if card is None:
            ctx.log.warning("The call's KeyCRM card is gone: nothing written", {"card_id": card_id})
            return PostcallResult(
                success=True, record_id=p.record_id, outcome=outcome, note="the card is gone"
            )
        note = with_note(card.get("note"), text)

    written = [name for name, value in (("status", status_id), ("summary", text)) if value is not None]
    if not written:
        ctx.log.info("Nothing to write for this call", {"card_id": card_id, "outcome": outcome})
        return PostcallResult(
            success=True,
            record_id=p.record_id,
            outcome=outcome,
            note="no status for this outcome and no summary",
        )
    updated: dict[str, Any] = await ctx.step.run(
        "keycrm.update_card",
        lambda: crm.update_card(card_id, status_id=status_id, note=note, custom_fields=custom_fields),
        input={"card_id": card_id, "status_id": status_id, "summary_into": settings.note_field or "note"},
        transform=lambda answer: {"status": answer.get("status")},
    )
    ctx.log.info(
        "Call written to the KeyCRM card",
        {
            "card_id": card_id,
            "status_id": status_id,
            "outcome": outcome,
            "written": written,
            "ok": updated.get("status"),
        },
    )
    return PostcallResult(
        success=True, record_id=p.record_id, status_id=status_id, outcome=outcome, written=written
    )
