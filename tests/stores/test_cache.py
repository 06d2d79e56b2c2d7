"""Cache against a real PostgreSQL: TTL expiry, upsert, cache-aside, isolation."""

from __future__ import annotations

import asyncpg
from pydantic import BaseModel

from happ_integ.stores.cache import Cache


async def test_set_get_upsert_delete(pool: asyncpg.Pool, name: str) -> None:
    cache = Cache(pool, name)
    assert await cache.get("k") is None
    await cache.set("k", {"a": [1, "два"]})
    assert await cache.get("k") == {"a": [1, "два"]}
    await cache.set("k", 5)
    assert await cache.get("k") == 5
    assert await cache.delete("k") is True
    assert await cache.delete("k") is False
    assert await cache.get("k") is None
    await cache.set("k", "v")
    await cache.set("k", None)  # same as delete: a cached None could not be told from a miss
    assert await pool.fetchval("SELECT count(*) FROM happ_cache WHERE integration = $1", name) == 0


async def test_models_are_stored_as_json(pool: asyncpg.Pool, name: str) -> None:
    class Ctx(BaseModel):
        phone: str
        tries: int

    cache = Cache(pool, name)
    await cache.set("ctx", Ctx(phone="+380", tries=2))
    assert await cache.get("ctx") == {"phone": "+380", "tries": 2}


async def test_ttl_expiry_removes_the_row(pool: asyncpg.Pool, name: str) -> None:
    cache = Cache(pool, name)
    await cache.set("short", "v", ttl_seconds=60)
    await cache.set("forever", "v")
    assert await cache.get("short") == "v"
    # Its hour is up: moved into the past rather than waited for, so no clock race.
    await pool.execute(
        "UPDATE happ_cache SET expires_at = now() - interval '1 s' WHERE integration = $1 AND key = 'short'",
        name,
    )
    assert await cache.get("short") is None
    assert await cache.get("forever") == "v"
    keys = await pool.fetch("SELECT key FROM happ_cache WHERE integration = $1", name)
    assert [r["key"] for r in keys] == ["forever"]


async def test_purge_expired(pool: asyncpg.Pool, name: str) -> None:
    cache = Cache(pool, name)
    await cache.set("live", 1, ttl_seconds=60)
    await pool.execute(
        "INSERT INTO happ_cache (integration, key, value, expires_at) VALUES ($1, 'old', '1', now() - interval '1 s')",
        name,
    )
    assert await cache.purge_expired() == 1
    assert await cache.get("live") == 1


async def test_integrations_do_not_share_keys(pool: asyncpg.Pool, name: str) -> None:
    await Cache(pool, name).set("k", "mine")
    assert await Cache(pool, f"{name}b").get("k") is None
