"""The core schema: created on first use, idempotent, safe to create concurrently; errors mapped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from happ_integ.errors import DependencyUnavailable
from happ_integ.stores.cache import Cache
from happ_integ.stores.pool import create_pool
from happ_integ.stores.schema import CORE_TABLES, ensure_core_schema, pg_errors


@pytest.fixture
async def fresh_pool(pool: asyncpg.Pool, pg_url: str, unique: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a new, empty database, for what happens before any setup ran."""
    database = f"fresh_{unique}"
    await pool.execute(f'CREATE DATABASE "{database}"')
    fresh = await create_pool(pg_url.rsplit("/", 1)[0] + f"/{database}", min_size=1, max_size=6)
    yield fresh
    await fresh.close()
    await pool.execute(f'DROP DATABASE "{database}"')


async def core_tables(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch("SELECT tablename FROM pg_tables WHERE tablename LIKE 'happ\\_%'")
    return {r["tablename"] for r in rows}


async def test_stores_create_the_schema_on_first_use(fresh_pool: asyncpg.Pool) -> None:
    assert await core_tables(fresh_pool) == set()
    await Cache(fresh_pool, "sofa").set("k", 1)
    assert await core_tables(fresh_pool) == set(CORE_TABLES)
    assert await Cache(fresh_pool, "sofa").get("k") == 1


async def test_concurrent_creation_on_an_empty_database(fresh_pool: asyncpg.Pool) -> None:
    await asyncio.gather(*(ensure_core_schema(fresh_pool) for _ in range(5)))
    await ensure_core_schema(fresh_pool)
    assert await core_tables(fresh_pool) == set(CORE_TABLES)


async def test_unreachable_postgres_is_dependency_unavailable(pg_url: str) -> None:
    with pytest.raises(DependencyUnavailable, match="PostgreSQL") as err:
        with pg_errors():
            await create_pool("postgresql://postgres@127.0.0.1:1/happ", min_size=1, max_size=1)
    assert err.value.dependency == "PostgreSQL"
    closed = await create_pool(pg_url, min_size=1, max_size=1)
    await closed.close()
    with pytest.raises(DependencyUnavailable):
        await Cache(closed, "tclosed").get("k")
