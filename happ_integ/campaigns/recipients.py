"""Checking a campaign's recipients before any is stored: numbers normalised as call-originate
normalises them, ids unique within the campaign.

    accepted, rejected = check_recipients(items, default_region="UA", taken={"lead-1"})
    accepted[0].recipient_id, accepted[0].phone          # "lead-2", "+380994829573"
    rejected[0]                                          # Rejected(index=3, id="x", error="…")

A recipient's id is the one it was given, else its number (E.164). A repeated id is rejected at
its later occurrence; an invalid number by its index; the rest are accepted.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from happ_integ.calls.phones import mask_phone, normalize_phone
from happ_integ.errors import ValidationFailed

RECIPIENT_ID = re.compile(r"^[A-Za-z0-9_.:@+-]{1,128}$")
MAX_FIELDS = 100


class RecipientIn(BaseModel):
    """One recipient as a request names it."""

    # Limits beyond a type are checked by `check_recipients`, so one odd row is rejected by its
    # index instead of sinking a 10,000-row request.
    phone_number: str = Field(max_length=1024, examples=["+380994829573"])
    id: str | None = Field(
        default=None,
        max_length=1024,
        description="unique in the campaign, 1 to 128 letters, digits or _.:@+-; default: the number",
    )
    variables: dict[str, Any] = Field(
        default_factory=dict, description="the agent's dynamic variables for this recipient (at most 100)"
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="kept with the recipient, given to the postcall (at most 100)"
    )


class Recipient(BaseModel):
    """A checked recipient, as it is stored."""

    recipient_id: str
    phone: str = Field(description="E.164")
    index: int = Field(default=-1, exclude=True, description="its place in the request")
    variables: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Rejected(BaseModel):
    index: int = Field(description="0-based, in the request")
    id: str | None = None
    error: str


def check_recipients(
    items: list[RecipientIn], default_region: str, taken: set[str] | None = None
) -> tuple[list[Recipient], list[Rejected]]:
    """The recipients to store and those refused; `taken` are ids the campaign already has. An
    error never repeats a number (an id defaulted from one is named "this number")."""
    seen = set(taken or ())
    accepted: list[Recipient] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(items):
        given = item.id[:128] if item.id else None
        try:
            phone = normalize_phone(item.phone_number[:64], default_region)
        except ValidationFailed:
            rejected.append(Rejected(index=index, id=given, error="phone_number is not a valid phone number"))
            continue
        recipient_id = item.id or phone
        error = None
        if len(item.variables) > MAX_FIELDS or len(item.metadata) > MAX_FIELDS:
            error = f"variables and metadata: at most {MAX_FIELDS} each"
        elif not RECIPIENT_ID.match(recipient_id):
            error = "id: use 1 to 128 letters, digits or _.:@+-"
        elif recipient_id in seen:
            error = (
                "this number is already in the campaign"
                if item.id is None
                else "this id is already in the campaign"
            )
        if error is not None:
            rejected.append(Rejected(index=index, id=given, error=error))
            continue
        seen.add(recipient_id)
        accepted.append(
            Recipient(
                recipient_id=recipient_id,
                phone=phone,
                variables=item.variables,
                metadata=item.metadata,
                index=index,
            )
        )
    return accepted, rejected


def shown_id(recipient_id: str, phone: str) -> str:
    """A recipient's id as the API, the report, the console and the logs show it: a recipient sent
    without an id has its number as its id, and that is shown masked, as the number is."""
    return mask_phone(phone) if recipient_id == phone else recipient_id
