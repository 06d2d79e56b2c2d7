"""Phone numbers as the call flow keeps them (`happ_integ.calls.phones`)."""

from __future__ import annotations

import pytest

from happ_integ.calls.phones import mask_phone, normalize_phone
from happ_integ.errors import ValidationFailed


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("099 482 95 73", "UA", "+380994829573"),
        ("+380 (99) 482-95-73", "UA", "+380994829573"),
        ("  0994829573 ", "UA", "+380994829573"),
        ("+48 501 234 567", "UA", "+48501234567"),
        ("501 234 567", "PL", "+48501234567"),
    ],
)
def test_a_number_is_kept_in_e164(raw: str, region: str, e164: str) -> None:
    assert normalize_phone(raw, region) == e164


@pytest.mark.parametrize("raw", ["", "   ", "not a number", "+380 12", "1" * 33, "+1 555 0100"])
def test_what_is_not_a_valid_number_is_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        normalize_phone(raw)
    assert refused.value.details == {"field": "phone_number"}


def test_a_masked_number_keeps_the_country_and_operator_code_and_the_last_two_digits() -> None:
    assert mask_phone("+380994829573") == "+38099*****73"
    assert mask_phone("+48501234567") == "+48501****67"
    assert mask_phone("+12345") == "******"  # too short to show any of it
