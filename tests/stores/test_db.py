"""Db against a real PostgreSQL: prefixes, filters, coercion, JSON-shaped rows, errors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from happ_integ.errors import Conflict, NotFound, ValidationFailed
from happ_integ.stores.db import Db


def iso(delta_minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=delta_minutes)).isoformat().replace("+00:00", "Z")


async def test_insert_lands_in_the_prefixed_table(db: Db, pool: asyncpg.Pool, name: str) -> None:
    row = await db.insert("calls", {"id": "c1", "status": "initiated"})
    assert row["id"] == "c1" and row["attempt"] == 0
    raw = await pool.fetch(f'SELECT id, status FROM "{name}_calls"')
    assert [dict(r) for r in raw] == [{"id": "c1", "status": "initiated"}]
    # Other integrations have their own table, or none at all.
    with pytest.raises(NotFound, match="calls"):
        await Db(pool, f"{name}x").select("calls")


async def test_rows_come_back_json_shaped(db: Db) -> None:
    row = await db.insert(
        "calls",
        {
            "id": "c1",
            "amount": "12.50",
            "score": 3,
            "active": "true",
            "metadata": {"tries": [1, 2], "who": "Олена"},
            "tags": ["a", "b"],
            "ref": "12345678-1234-5678-1234-567812345678",
            "blob": base64.b64encode(b"\x00\x01").decode(),
            "born": "1990-05-17",
            "local_at": "2025-03-01T10:00:00",
            "next_retry_at": "2025-03-01T10:00:00.000Z",
        },
    )
    assert row["amount"] == 12.5
    assert row["score"] == 3.0
    assert row["active"] is True
    assert row["metadata"] == {"tries": [1, 2], "who": "Олена"}
    assert row["tags"] == ["a", "b"]
    assert row["ref"] == "12345678-1234-5678-1234-567812345678"
    assert row["blob"] == "AAE="
    assert row["born"] == "1990-05-17"
    assert row["local_at"] == "2025-03-01T10:00:00"
    assert row["next_retry_at"] == "2025-03-01T10:00:00+00:00"
    assert isinstance(row["created_at"], str)
    assert await db.select("calls", {"id": "c1"}) == [row]


async def test_sqlite_style_values_are_coerced(db: Db) -> None:
    row = await db.insert(
        "calls", {"id": 42, "status": 7, "attempt": "3", "active": 0, "metadata": '{"isTestCall": true}'}
    )
    assert (row["id"], row["status"], row["attempt"], row["active"]) == ("42", "7", 3, False)
    assert row["metadata"] == {"isTestCall": True}
    assert [r["id"] for r in await db.select("calls", {"id": 42})] == ["42"]


async def test_filters(db: Db) -> None:
    for i, status in enumerate(["a", "b", "c", None]):
        await db.insert("calls", {"id": f"c{i}", "status": status, "attempt": i})

    async def ids(where: dict[str, object]) -> list[str]:
        return [r["id"] for r in await db.select("calls", where, order_by="id")]

    assert await ids({"status": "a"}) == ["c0"]
    assert await ids({"status": None}) == ["c3"]
    assert await ids({"status": {"$eq": "b"}}) == ["c1"]
    assert await ids({"status": {"$ne": "a"}}) == ["c1", "c2", "c3"]
    assert await ids({"status": {"$ne": None}}) == ["c0", "c1", "c2"]
    assert await ids({"attempt": {"$lt": 1}}) == ["c0"]
    assert await ids({"attempt": {"$lte": 1}}) == ["c0", "c1"]
    assert await ids({"attempt": {"$gt": 2}}) == ["c3"]
    assert await ids({"attempt": {"$gte": 1, "$lt": 3}}) == ["c1", "c2"]
    assert await ids({"status": {"$in": ["a", "c"]}}) == ["c0", "c2"]
    assert await ids({"status": {"$in": ["a", None]}}) == ["c0", "c3"]
    assert await ids({"status": {"$in": []}}) == []
    assert await ids({"attempt": {"$in": ["1", 2]}}) == ["c1", "c2"]
    assert await ids({"id": {"$like": "c%"}, "attempt": {"$in": [0, 3]}}) == ["c0", "c3"]
    with pytest.raises(ValidationFailed, match=r"\$regex"):
        await ids({"status": {"$regex": "a"}})


async def test_order_limit_offset(db: Db) -> None:
    for i in range(5):
        await db.insert("calls", {"id": f"c{i}", "attempt": i % 2})
    rows = await db.select("calls", order_by=["attempt", "-id"], limit=3)
    assert [r["id"] for r in rows] == ["c4", "c2", "c0"]
    rows = await db.select("calls", order_by="-id", limit=2, offset=1)
    assert [r["id"] for r in rows] == ["c3", "c2"]


async def test_iso_strings_compare_with_timestamptz(db: Db) -> None:
    await db.insert("calls", {"id": "due", "next_retry_at": iso(-5)})
    await db.insert("calls", {"id": "later", "next_retry_at": iso(+60)})
    await db.insert("calls", {"id": "never"})
    due = await db.select("calls", {"next_retry_at": {"$lte": iso(0)}})
    assert [r["id"] for r in due] == ["due"]
    assert await db.update("calls", {"status": "initiated"}, {"id": due[0]["id"]}) == 1
    after = await db.select("calls", {"next_retry_at": {"$gt": iso(0)}})
    assert [r["id"] for r in after] == ["later"]


async def test_update_and_delete_count_and_refuse_empty_where(db: Db) -> None:
    for i in range(3):
        await db.insert("calls", {"id": f"c{i}", "status": "initiated"})
    assert await db.update("calls", {"status": "failed"}, {"id": {"$in": ["c0", "c1"]}}) == 2
    assert await db.update("calls", {"status": "x"}, {"id": "nope"}) == 0
    with pytest.raises(ValidationFailed, match="where"):
        await db.update("calls", {"status": "x"}, {})
    with pytest.raises(ValidationFailed, match="where"):
        await db.delete("calls", {})
    assert await db.delete("calls", {"status": "failed"}) == 2
    assert [r["id"] for r in await db.select("calls")] == ["c2"]


async def test_injection_is_inert_or_refused(db: Db, pool: asyncpg.Pool, name: str) -> None:
    evil = f"x'; DROP TABLE {name}_calls; --"
    await db.insert("calls", {"id": evil, "status": 'a"b'})
    assert [r["id"] for r in await db.select("calls", {"id": evil})] == [evil]
    assert [r["status"] for r in await db.select("calls", {"status": {"$like": 'a"%'}})] == ['a"b']
    for bad_column in ("a; drop", 'id" = id; --', "id)"):
        with pytest.raises(ValidationFailed, match="invalid identifier"):
            await db.select("calls", {bad_column: 1})
        with pytest.raises(ValidationFailed, match="invalid identifier"):
            await db.insert("calls", {bad_column: 1})
    with pytest.raises(ValidationFailed, match="invalid identifier"):
        await db.select(f"calls; DROP TABLE {name}_calls")
    with pytest.raises(ValidationFailed, match="invalid identifier"):
        await db.select("calls", order_by="id; DROP TABLE x")
    assert await pool.fetchval(f'SELECT count(*) FROM "{name}_calls"') == 1


async def test_unknown_column_and_table(db: Db) -> None:
    with pytest.raises(ValidationFailed, match=r"'calls'.*no column 'nope'"):
        await db.insert("calls", {"id": "c1", "nope": 1})
    with pytest.raises(ValidationFailed, match="no column 'nope'"):
        await db.select("calls", {"nope": 1})
    with pytest.raises(ValidationFailed, match="no column 'nope'"):
        await db.select("calls", order_by="-nope")
    with pytest.raises(NotFound, match="leads"):
        await db.select("leads")
    with pytest.raises(ValidationFailed, match=r"next_retry_at is timestamptz"):
        await db.select("calls", {"next_retry_at": {"$lte": "not a date"}})


async def test_a_column_added_later_is_found(db: Db, pool: asyncpg.Pool, name: str) -> None:
    await db.select("calls")  # caches the columns
    await pool.execute(f'ALTER TABLE "{name}_calls" ADD COLUMN phone text')
    row = await db.insert("calls", {"id": "c1", "phone": 380})
    assert row["phone"] == "380"


async def test_unique_violation_is_conflict(db: Db) -> None:
    await db.insert("calls", {"id": "c1"})
    with pytest.raises(Conflict):
        await db.insert("calls", {"id": "c1"})


async def test_query_expands_tables_and_coerces_params(db: Db, name: str) -> None:
    await db.insert("calls", {"id": "c1", "status": "initiated", "next_retry_at": iso(-1)})
    await db.insert("calls", {"id": "c2", "status": "in_progress"})
    res = await db.query(
        "SELECT count(*) AS count FROM {{calls}} WHERE status = ANY($1)", ["initiated", "in_progress"]
    )
    assert res.data == [{"count": 2}] and res.row_count == 1
    res = await db.query("SELECT id FROM {{calls}} WHERE next_retry_at <= $1", iso(0))
    assert res.data == [{"id": "c1"}]
    # The raw table name, without the placeholder, works too.
    res = await db.query(f"SELECT count(*) AS n FROM {name}_calls")
    assert res.data == [{"n": 2}]
    res = await db.query("UPDATE {{calls}} SET status = $1 WHERE id = $2", "failed", 2)
    assert res.row_count == 0 and res.data == []
    with pytest.raises(ValidationFailed, match="parameters"):
        await db.query("SELECT * FROM {{calls}} WHERE id = $1")
    with pytest.raises(ValidationFailed, match="syntax"):
        await db.query("SELEC 1")
    with pytest.raises(NotFound, match="leads"):
        await db.query("SELECT * FROM {{leads}}")
