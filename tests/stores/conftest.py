"""Fixtures of the store tests: a fresh integration name and a `calls` table with many column types."""

from __future__ import annotations

import asyncpg
import pytest

from happ_integ.stores.db import Db
from happ_integ.stores.migrations import Migration, apply_migrations

CALLS = Migration(
    "001_calls",
    """
    CREATE TABLE {{calls}} (
        id            text PRIMARY KEY,
        status        text,
        attempt       int NOT NULL DEFAULT 0,
        amount        numeric,
        score         float8,
        active        bool,
        metadata      jsonb,
        tags          text[],
        ref           uuid,
        blob          bytea,
        born          date,
        local_at      timestamp,
        next_retry_at timestamptz,
        created_at    timestamptz NOT NULL DEFAULT now()
    )
    """,
)


@pytest.fixture
def name(unique: str) -> str:
    """An integration name no other test uses, so tests never see each other's rows."""
    return f"t{unique}"


@pytest.fixture
async def db(pool: asyncpg.Pool, name: str) -> Db:
    await apply_migrations(pool, name, [CALLS])
    return Db(pool, name)
