"""The SQL the Db builds, checked without a server."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from happ_integ.errors import ValidationFailed
from happ_integ.stores.db import (
    build_delete,
    build_insert,
    build_select,
    build_update,
    build_where,
    expand_tables,
    quote_ident,
    table_name,
)
from happ_integ.stores.schema import coerce_value, to_json

T = '"sofa_calls"'


def test_every_operator_is_a_bind_parameter() -> None:
    params: list[object] = []
    where = {
        "a": 1,
        "b": None,
        "c": {"$ne": "x", "$gte": 2},
        "d": {"$in": [1, 2]},
        "e": {"$like": "ab%"},
        "f": {"$lt": 3, "$lte": 4, "$gt": 0, "$eq": 5},
        "g": {"$ne": None},
    }
    sql = build_where(where, params)
    assert sql == (
        ' WHERE "a" = $1 AND "b" IS NULL AND "c" IS DISTINCT FROM $2 AND "c" >= $3'
        ' AND "d" = ANY($4) AND "e" LIKE $5 AND "f" < $6 AND "f" <= $7 AND "f" > $8 AND "f" = $9'
        ' AND "g" IS NOT NULL'
    )
    assert params == [1, "x", 2, [1, 2], "ab%", 3, 4, 0, 5]


def test_in_with_none_also_matches_null() -> None:
    params: list[object] = []
    assert build_where({"s": {"$in": ["a", None]}}, params) == ' WHERE ("s" = ANY($1) OR "s" IS NULL)'
    assert params == [["a"]]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"a": {"$regex": "x"}}, "$regex"),
        ({"a": {"$in": "abc"}}, "takes a list"),
        ({"a": {"$lt": None}}, "needs a value"),
        ({"a; drop": 1}, "invalid identifier"),
        ({'a"b': 1}, "invalid identifier"),
    ],
)
def test_bad_filters_are_refused(where: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message.replace("$", r"\$")):
        build_where(where, [])


def test_select_orders_and_pages_with_parameters() -> None:
    sql, params = build_select(T, {"s": "a"}, order_by=["-created_at", "id"], limit=10, offset=20)
    assert sql == f'SELECT * FROM {T} WHERE "s" = $1 ORDER BY "created_at" DESC, "id" LIMIT $2 OFFSET $3'
    assert params == ["a", 10, 20]
    with pytest.raises(ValidationFailed):
        build_select(T, order_by="-x; drop")
    with pytest.raises(ValidationFailed):
        build_select(T, limit=-1)


def test_insert_update_delete() -> None:
    assert build_insert(T, {"id": "c1", "n": 2}) == (
        f'INSERT INTO {T} ("id", "n") VALUES ($1, $2) RETURNING *',
        ["c1", 2],
    )
    assert build_insert(T, {})[0] == f"INSERT INTO {T} DEFAULT VALUES RETURNING *"
    assert build_update(T, {"s": "x"}, {"id": "c1"}) == (
        f'UPDATE {T} SET "s" = $1 WHERE "id" = $2',
        ["x", "c1"],
    )
    assert build_delete(T, {"id": "c1"}) == (f'DELETE FROM {T} WHERE "id" = $1', ["c1"])
    with pytest.raises(ValidationFailed, match="non-empty where"):
        build_update(T, {"s": "x"}, {})
    with pytest.raises(ValidationFailed, match="non-empty where"):
        build_delete(T, {})


def test_identifiers_and_placeholders() -> None:
    assert quote_ident("calls") == '"calls"'
    assert table_name("sofa", "calls") == "sofa_calls"
    assert expand_tables("SELECT * FROM {{calls}} JOIN {{ leads }} ON true", "sofa") == (
        'SELECT * FROM "sofa_calls" JOIN "sofa_leads" ON true'
    )
    for bad in ("{{calls; drop}}", '{{a"b}}', "{{}}"):
        with pytest.raises(ValidationFailed):
            expand_tables(f"SELECT * FROM {bad}", "sofa")
    for integration in ("Sofa", "my-integration", "1x", ""):
        with pytest.raises(ValidationFailed, match="integration name"):
            table_name(integration, "calls")
    with pytest.raises(ValidationFailed):
        table_name("sofa", "x" * 60)  # the prefixed name would pass PostgreSQL's 63 characters


def test_coerce_for_columns() -> None:
    assert coerce_value("timestamptz", "2025-01-02T03:04:05.678Z") == datetime(
        2025, 1, 2, 3, 4, 5, 678000, UTC
    )
    assert coerce_value("timestamptz", "2025-01-02T03:04:05") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert coerce_value("timestamp", "2025-01-02T05:04:05+02:00") == datetime(2025, 1, 2, 3, 4, 5)
    assert coerce_value("date", "2025-01-02T03:04:05Z") == date(2025, 1, 2)
    assert coerce_value("numeric", "1.50") == Decimal("1.50")
    assert coerce_value("text", 42) == "42"
    assert coerce_value("text", {"a": 1}) == '{"a": 1}'
    assert coerce_value("int4", "7") == 7
    assert coerce_value("bool", "false") is False
    assert coerce_value("bool", 1) is True
    assert coerce_value("jsonb", '{"a": 1}') == {"a": 1}
    assert coerce_value("jsonb", "plain") == "plain"
    assert coerce_value("text[]", [1, 2]) == ["1", "2"]
    assert coerce_value("uuid", "12345678-1234-5678-1234-567812345678") == UUID(
        "12345678-1234-5678-1234-567812345678"
    )
    with pytest.raises(ValueError):
        coerce_value("timestamptz", "tomorrow")
    with pytest.raises(ValueError):
        coerce_value("bool", "maybe")


def test_to_json_normalises() -> None:
    row = {
        "at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "d": date(2025, 1, 2),
        "n": Decimal("2.00"),
        "f": Decimal("2.5"),
        "u": UUID(int=1),
        "b": b"\x00\xff",
        "j": {"nested": [Decimal("1")]},
    }
    assert to_json(row) == {
        "at": "2025-01-02T03:04:05+00:00",
        "d": "2025-01-02",
        "n": 2,
        "f": 2.5,
        "u": "00000000-0000-0000-0000-000000000001",
        "b": "AP8=",
        "j": {"nested": [1]},
    }
