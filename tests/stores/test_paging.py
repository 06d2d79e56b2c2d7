"""Cursors of the keyset listings: a page's position comes back as it was given, and a cursor the
API did not hand out is a 422, whatever it holds."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from happ_integ.errors import ValidationFailed
from happ_integ.stores.paging import make_cursor, one_page, read_cursor

AT = datetime(2026, 12, 7, 10, 30, 1, 250000, tzinfo=UTC)


def test_a_position_comes_back_as_it_was_given() -> None:
    assert read_cursor(make_cursor(AT, "c_1"), datetime, str) == (AT, "c_1")
    assert read_cursor(make_cursor(AT, 42), datetime, int) == (AT, 42)
    assert read_cursor(make_cursor(7), int) == (7,)


def forged(parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        forged("a string"),
        forged([AT.isoformat()]),  # a part missing
        forged([AT.isoformat(), "c_1", "more"]),
        forged(["2026-12-07T10:30:01", "c_1"]),  # no time zone
        forged(["yesterday", "c_1"]),
        forged([1, "c_1"]),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_a_cursor_the_api_did_not_hand_out_is_refused(cursor: str) -> None:
    with pytest.raises(ValidationFailed, match="cursor is not one this API handed out"):
        read_cursor(cursor, datetime, str)


def test_the_extra_row_only_says_another_page_exists() -> None:
    rows = [(AT, f"c_{i}") for i in range(4)]
    page, cursor = one_page(rows, 3, lambda r: r)
    assert page == rows[:3] and cursor is not None
    assert read_cursor(cursor, datetime, str) == rows[2]
    assert one_page(rows[:3], 3, lambda r: r) == (rows[:3], None)
    assert one_page([], 3, lambda r: r) == ([], None)
