"""crm-postcall: after an answered call, its outcome, a call log and its summary on the lead's record."""

from __future__ import annotations

import math
from typing import Any

from happ_integ import Context, PostcallPayload, define_handler, mask_phone
from integrations.sofa.config import CrmFields, StatusMap
from integrations.sofa.models import PostcallResult


def duration_minutes(seconds: float) -> int:
    """NetHunt's call-log duration: whole minutes, rounded up (a 10-second call is 1 minute)."""
    return math.ceil(seconds / 60) if seconds > 0 else 0


# Eight tries over about three minutes: the call's outcome reaches a CRM that was down meanwhile.
@define_handler(name="crm-postcall", retries=8)
async def crm_postcall(ctx: Context[PostcallPayload]) -> PostcallResult:
    """Writes to the record the lookup found (no second search): status, call log, comment."""
    p = ctx.payload
    if not p.record_id:
        ctx.log.info("No CRM record for this call: nothing written", {"phone": mask_phone(p.phone_number)})
        return PostcallResult(success=True, note="no CRM record: nothing written")
    record_id = p.record_id

    fields = await ctx.config.get("crm_fields", CrmFields)
    status_map = await ctx.config.get("status_map", StatusMap)
    analysis = p.analysis
    status = status_map.value_for(analysis.outcome if analysis else None, p.call_successful)
    outcome = analysis.outcome if analysis else (p.call_successful or "unknown")
    summary = ((analysis.summary if analysis else "") or p.transcript_summary or "").strip()
    next_action = (analysis.next_action or "").strip() if analysis else ""
    # The attempt number keeps each attempt's texts apart: a retry looks for its own by text.
    log_text = f"Outbound call, attempt {p.attempt}: {summary or f'no summary (outcome: {outcome})'}"
    comment_text = (
        f"Call summary (attempt {p.attempt}): {summary or 'none'}\nOutcome: {outcome} (status: {status})"
    )
    if next_action:
        comment_text += f"\nNext: {next_action}"
    crm = ctx.nethunt()
    written: list[str] = []

    updated: dict[str, Any] | None = await ctx.step.run(
        "crm.update_status",
        lambda: crm.update_record(record_id, {fields.status: status}, overwrite=True),
        input={"record_id": record_id, "field": fields.status, "status": status},
        transform=lambda record: {"updated": record is not None},
    )
    written.append("status")

    minutes = duration_minutes(p.duration_seconds)
    call_log: dict[str, Any] = await ctx.step.run(
        "crm.call_log",
        lambda: crm.create_call_log(record_id, log_text, time=p.ended_at, duration_minutes=minutes),
        input={"record_id": record_id, "duration_minutes": minutes},
        transform=lambda answer: {"call_log": answer.get("callLogId")},
    )
    written.append("call_log")

    comment: dict[str, Any] = await ctx.step.run(
        "crm.comment",
        lambda: crm.create_comment(record_id, comment_text),
        input={"record_id": record_id},
        transform=lambda answer: {"comment": answer.get("commentId")},
    )
    written.append("comment")

    ctx.log.info(
        "Call written to the CRM record",
        {
            "record_id": record_id,
            "status": status,
            "updated_at": (updated or {}).get("updated_at"),
            "call_log": call_log.get("callLogId"),
            "comment": comment.get("commentId"),
        },
    )
    return PostcallResult(success=True, record_id=record_id, status=status, written=written)
