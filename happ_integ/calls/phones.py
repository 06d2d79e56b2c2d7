"""Phone numbers as the call flow keeps them: E.164, and masked wherever they are shown.

normalize_phone("099 482 95 73", "UA")   # "+380994829573"
mask_phone("+380994829573")               # "+38099*****73"
"""

from __future__ import annotations

import phonenumbers

from happ_integ.errors import ValidationFailed


def normalize_phone(raw: str, default_region: str = "UA") -> str:
    """E.164 form of `raw`, or ValidationFailed naming it when it is not a possible, valid number."""
    text = (raw or "").strip()
    if not text or len(text) > 32:
        raise ValidationFailed(f"{raw!r} is not a phone number", field="phone_number")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise ValidationFailed(f"{raw!r} is not a phone number", field="phone_number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed(f"{raw!r} is not a valid phone number", field="phone_number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """Country and operator code and the last two digits stay; the rest is starred."""
    if len(e164) <= 7:
        return "*" * len(e164)
    return e164[:6] + "*" * (len(e164) - 8) + e164[-2:]
