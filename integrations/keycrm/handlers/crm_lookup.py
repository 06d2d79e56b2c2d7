"""crm-lookup: before dialling, the buyer in KeyCRM, its open card and what the agent may greet it with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from happ_integ import Context, LookupPayload, LookupResult, define_handler, mask_phone
from integrations.keycrm.config import KeyCrmSettings

Variable = str | int | float | bool


def custom_values(entity: Mapping[str, Any] | None) -> dict[str, Any]:
    """A buyer's or card's custom fields (`[{"uuid", "value", …}]`, KeyCRM lists the filled ones) by uuid."""
    values: dict[str, Any] = {}
    for item in (entity or {}).get("custom_fields") or []:
        if isinstance(item, Mapping) and item.get("uuid"):
            values[str(item["uuid"])] = item.get("value")
    return values


def variable(value: Any) -> Variable | None:
    """A value as a dynamic variable: a select's list joined; None when it has no value."""
    if isinstance(value, list):
        value = ", ".join(str(v).strip() for v in value if v is not None and str(v).strip())
    if isinstance(value, bool | int | float):
        return value
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def name_of(entity: Any, *keys: str) -> str | None:
    """The first non-empty text of `keys` in a related entity (`company`, `manager`)."""
    if not isinstance(entity, Mapping):
        return None
    for key in keys:
        text = variable(entity.get(key))
        if isinstance(text, str):
            return text
    return None


def open_card(cards: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest card neither finished nor in a final status."""
    candidates = [
        card
        for card in cards
        if not (card.get("status") or {}).get("is_final")
        and card.get("is_finished") in (None, False, 0, "0", "", "false")
    ]
    return max(candidates, key=lambda card: int(card.get("id") or 0), default=None)


# Six tries over about a minute: a CRM that is down for a while still gets the call its lead.
@define_handler(name="crm-lookup", retries=6)
async def crm_lookup(ctx: Context[LookupPayload]) -> LookupResult:
    """The buyer whose phone is the number, and its open card in the configured pipeline (the card is
    what the post-call step updates): the buyer's name, company, manager and the configured fields."""
    secrets = await ctx.creds.get()
    if secrets.missing("KEYCRM_API_KEY"):
        return LookupResult(found=False, note="KeyCRM credentials are not configured")

    settings = await ctx.config.get("keycrm", KeyCrmSettings)
    crm = ctx.keycrm(per_minute=settings.requests_per_minute)
    masked = mask_phone(ctx.payload.phone_number)
    buyers: list[dict[str, Any]] = await ctx.step.run(
        "keycrm.find_buyer",
        lambda: crm.find_buyers(ctx.payload.phone_number, limit=1),
        input={"phone": masked},
        transform=lambda found: {"buyers": len(found)},
    )
    if not buyers:
        ctx.log.info("No KeyCRM buyer for this number", {"phone": masked})
        return LookupResult(found=False, note="no KeyCRM buyer for this number")

    buyer = buyers[0]
    buyer_id = int(buyer["id"])
    cards: list[dict[str, Any]] = await ctx.step.run(
        "keycrm.find_cards",
        lambda: crm.find_cards(buyer_id, pipeline_id=settings.pipeline_id),
        input={"buyer_id": buyer_id, "pipeline_id": settings.pipeline_id},
        transform=lambda found: {"cards": [card.get("id") for card in found]},
    )
    card = open_card(cards)

    variables: dict[str, Variable] = {}
    for name, value in (
        ("client_name", variable(buyer.get("full_name"))),
        ("company", name_of(buyer.get("company"), "name", "full_name")),
        (
            "manager",
            name_of(buyer.get("manager"), "full_name", "first_name")
            or name_of((card or {}).get("manager"), "full_name", "first_name"),
        ),
    ):
        if value is not None:
            variables[name] = value
    on_card, on_buyer = custom_values(card), custom_values(buyer)
    for name, uuid in settings.custom_fields.items():
        value = variable(on_card.get(uuid))
        if value is None:
            value = variable(on_buyer.get(uuid))
        if value is not None:
            variables[name] = value

    if card is None:
        ctx.log.info("KeyCRM buyer has no open card", {"phone": masked, "buyer_id": buyer_id})
        return LookupResult(
            found=True,
            record_id=None,
            variables=variables,
            note="the buyer has no open card: nothing to update",
        )
    return LookupResult(found=True, record_id=str(card["id"]), variables=variables)
