"""nethunt: event-only (NetHunt's webhook via `webhook/nethunt`): a call record from a CRM record."""

from __future__ import annotations

from happ_integ import Context, Dedup, define_handler
from integrations.example.models import NethuntPayload, NethuntResponse


@define_handler(name="nethunt", retries=3, endpoint=None, dedup=Dedup(ttl_seconds=600, key_field="recordId"))
async def nethunt(ctx: Context[NethuntPayload]) -> NethuntResponse:
    """Reads the CRM record (cached for an hour) and records a call for it."""
    p = ctx.payload
    if not p.recordId or not p.phone:
        return NethuntResponse(success=False, error="recordId and phone are required")
    record_id = p.recordId

    secrets = await ctx.creds.get()
    if secrets.missing("NETHUNT_EMAIL", "NETHUNT_API_KEY", "NETHUNT_FOLDER_ID"):
        return NethuntResponse(success=False, error="NetHunt credentials not configured")

    crm = ctx.nethunt(secrets.NETHUNT_EMAIL, secrets.NETHUNT_API_KEY)
    record = await ctx.cache.cache_aside(
        f"crm:record:{record_id}", 3600, lambda: crm.get_record(secrets.NETHUNT_FOLDER_ID, record_id)
    )
    if not record:
        return NethuntResponse(success=False, error="CRM record not found")

    call_id = f"call_{ctx.uuid().replace('-', '')[:16]}"
    await ctx.db.insert(
        "calls", {"id": call_id, "phone": p.phone, "lead_id": record_id, "status": "initiated"}
    )
    ctx.log.info("Call created from CRM", {"callId": call_id, "recordId": record_id})
    return NethuntResponse(success=True, callId=call_id)
