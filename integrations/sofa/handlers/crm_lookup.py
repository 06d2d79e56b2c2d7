"""crm-lookup: before dialling, the lead's record in NetHunt and what the agent may greet it with."""

from __future__ import annotations

from typing import Any

from happ_integ import Context, LookupPayload, LookupResult, define_handler, mask_phone
from happ_integ.calls.zones import is_zone
from integrations.sofa.config import CrmFields


def field_text(fields: dict[str, Any], name: str) -> str | None:
    """A record field as text: a list's first item; None when it has no value."""
    value = fields.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# Six tries over about a minute: a CRM that is down for a while still gets the call its lead.
@define_handler(name="crm-lookup", retries=6)
async def crm_lookup(ctx: Context[LookupPayload]) -> LookupResult:
    """The record whose phone field holds the number: its id, the lead's name, company and source."""
    secrets = await ctx.creds.get()
    if secrets.missing("NETHUNT_EMAIL", "NETHUNT_API_KEY", "NETHUNT_FOLDER_ID"):
        return LookupResult(found=False, note="NetHunt credentials are not configured")

    fields = await ctx.config.get("crm_fields", CrmFields)
    phone = ctx.payload.phone_number
    masked = mask_phone(phone)
    records: list[dict[str, Any]] = await ctx.step.run(
        "crm.search",
        lambda: ctx.nethunt().search_records(secrets.NETHUNT_FOLDER_ID, f'"{fields.phone}":{phone}', limit=1),
        input={"phone": masked},
        transform=lambda found: {"records": len(found)},
    )
    if not records:
        ctx.log.info("No CRM record for this number", {"phone": masked})
        return LookupResult(found=False, note="no CRM record for this number")

    record = records[0]
    values = record.get("fields") or {}
    variables: dict[str, str | int | float | bool] = {}
    for variable, field_name in (
        ("client_name", fields.name),
        ("company", fields.company),
        ("lead_source", fields.source),
    ):
        text = field_text(values, field_name)
        if text is not None:
            variables[variable] = text
    if fields.timezone and (zone := field_text(values, fields.timezone)) and is_zone(zone):
        variables["timezone"] = zone  # the window is then read in the lead's own zone
    return LookupResult(found=True, record_id=record.get("id"), variables=variables)
