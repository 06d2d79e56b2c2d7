"""Migrations against a real PostgreSQL: once, in order, concurrently, rollback on failure."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from happ_integ.errors import ValidationFailed
from happ_integ.stores.db import Db
from happ_integ.stores.migrations import Migration, MigrationFailed, applied_migrations, apply_migrations

MIGRATIONS = [
    Migration("001_calls", "CREATE TABLE {{calls}} (id text PRIMARY KEY, status text NOT NULL)"),
    Migration("002_retry", "ALTER TABLE {{calls}} ADD COLUMN next_retry_at timestamptz"),
    Migration(
        "003_log",
        "CREATE TABLE {{call_log}} (call_id text REFERENCES {{calls}}(id), note text);"
        "CREATE INDEX ON {{call_log}} (call_id);",
    ),
]


async def test_applied_once_in_order(pool: asyncpg.Pool, name: str) -> None:
    assert await apply_migrations(pool, name, MIGRATIONS[:2]) == ["001_calls", "002_retry"]
    assert await apply_migrations(pool, name, MIGRATIONS) == ["003_log"]
    assert await apply_migrations(pool, name, MIGRATIONS) == []
    assert set(await applied_migrations(pool, name)) == {"001_calls", "002_retry", "003_log"}
    tables = await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE tablename LIKE $1 ORDER BY 1", f"{name}_%"
    )
    assert [r["tablename"] for r in tables] == [f"{name}_call_log", f"{name}_calls"]
    assert await applied_migrations(pool, f"{name}b") == []


async def test_new_columns_are_usable_right_after(pool: asyncpg.Pool, name: str) -> None:
    await apply_migrations(pool, name, MIGRATIONS[:1])
    db = Db(pool, name)
    await db.insert("calls", {"id": "c1", "status": "x"})
    await apply_migrations(pool, name, MIGRATIONS[:2])
    row = await db.insert("calls", {"id": "c2", "status": "x", "next_retry_at": "2025-01-01T00:00:00Z"})
    assert row["next_retry_at"] == "2025-01-01T00:00:00+00:00"


async def test_concurrent_runs_apply_each_once(pool: asyncpg.Pool, name: str) -> None:
    results = await asyncio.gather(*(apply_migrations(pool, name, MIGRATIONS) for _ in range(4)))
    assert sorted(i for r in results for i in r) == ["001_calls", "002_retry", "003_log"]


async def test_failure_rolls_back_and_keeps_earlier(pool: asyncpg.Pool, name: str) -> None:
    broken = [
        MIGRATIONS[0],
        Migration("002_broken", "ALTER TABLE {{calls}} ADD COLUMN half text; SELECT no_such_function()"),
        MIGRATIONS[1],
    ]
    with pytest.raises(MigrationFailed, match="002_broken") as err:
        await apply_migrations(pool, name, broken)
    assert err.value.migration_id == "002_broken"
    assert await applied_migrations(pool, name) == ["001_calls"]
    columns = await pool.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1", f"{name}_calls"
    )
    assert "half" not in {r["column_name"] for r in columns}
    # Fixed, the rest applies.
    assert await apply_migrations(pool, name, MIGRATIONS) == ["002_retry", "003_log"]


async def test_refuses_duplicates_and_bad_names(pool: asyncpg.Pool, name: str) -> None:
    with pytest.raises(ValidationFailed, match="twice"):
        await apply_migrations(pool, name, [MIGRATIONS[0], MIGRATIONS[0]])
    with pytest.raises(ValidationFailed, match="invalid identifier"):
        await apply_migrations(pool, name, [Migration("001", "CREATE TABLE {{a; drop}} (id int)")])
    with pytest.raises(ValidationFailed, match="integration name"):
        await apply_migrations(pool, "Bad-Name", MIGRATIONS)
    assert await applied_migrations(pool, name) == []
