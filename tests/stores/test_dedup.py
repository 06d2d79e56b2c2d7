"""The dedup store against a real PostgreSQL: first answers, reused keys, and expired rows purged."""

from __future__ import annotations

import asyncpg

from happ_integ.stores.dedup import PURGE_BATCH, DedupClaim, DedupStore
from happ_integ.stores.schema import ensure_core_schema


async def expired_rows(pool: asyncpg.Pool, integration: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM happ_dedup WHERE integration = $1 AND expires_at <= now()", integration
        )
    )


async def test_the_first_claim_runs_and_its_answer_is_replayed(pool: asyncpg.Pool, name: str) -> None:
    store = DedupStore(pool, name, "h")
    assert await store.claim("k", 60, 60) == DedupClaim(first=True)
    assert await store.claim("k", 60, 60) == DedupClaim(first=False), "still running: no answer yet"
    await store.complete("k", 60, {"ok": 1}, 200)
    assert await store.claim("k", 60, 60) == DedupClaim(first=False, response={"ok": 1}, status_code=200)
    # Another handler's key of the same text is another key.
    assert (await DedupStore(pool, name, "other").claim("k", 60, 60)).first


async def test_a_key_that_came_with_another_request_is_a_conflict(pool: asyncpg.Pool, name: str) -> None:
    store = DedupStore(pool, name, "h")
    assert (await store.claim("k", 60, 60, digest="aaa")).first
    assert await store.claim("k", 60, 60, digest="bbb") == DedupClaim(first=False, conflict=True)
    await store.complete("k", 60, {"ok": 1}, 200)
    assert (await store.claim("k", 60, 60, digest="bbb")).conflict, "finished or not"
    assert (await store.claim("k", 60, 60, digest="aaa")).response == {"ok": 1}
    # Without a digest (an event's id) a redelivery is compared with nothing.
    assert (await store.claim("k", 60, 60)).response == {"ok": 1}


async def test_each_claim_purges_a_batch_of_expired_rows_of_any_integration(
    pool: asyncpg.Pool, name: str
) -> None:
    """`happ_dedup` does not keep every key ever seen: claims delete expired rows as they go."""
    old = f"{name}_old"
    await pool.execute(
        "INSERT INTO happ_dedup (integration, handler, key, response, status_code, expires_at)"
        " SELECT $1, 'h', 'k' || i, '{}'::jsonb, 200, now() - interval '1 hour'"
        " FROM generate_series(1, $2) AS i",
        old,
        PURGE_BATCH * 2 + 5,
    )
    await pool.execute(
        "INSERT INTO happ_dedup (integration, handler, key, expires_at) VALUES ($1, 'h', 'live', now() + interval '1 hour')",
        old,
    )
    store = DedupStore(pool, name, "h")
    assert (await store.claim("a", 60, 60)).first
    assert await expired_rows(pool, old) <= PURGE_BATCH + 5, "one claim removed a whole batch"
    for key in ("b", "c"):
        await store.claim(key, 60, 60)
    assert await expired_rows(pool, old) == 0
    # Rows within their TTL stay, and still answer.
    assert await pool.fetchval("SELECT count(*) FROM happ_dedup WHERE integration = $1", old) == 1
    assert await DedupStore(pool, old, "h").claim("live", 60, 60) == DedupClaim(first=False)


async def test_a_database_from_before_digests_gets_the_column(pool: asyncpg.Pool, name: str) -> None:
    await ensure_core_schema(pool)
    await pool.execute("ALTER TABLE happ_dedup DROP COLUMN digest")
    try:
        assert (await DedupStore(pool, name, "h").claim("k", 60, 60, digest="aaa")).first
        assert (await DedupStore(pool, name, "h").claim("k", 60, 60, digest="bbb")).conflict
    finally:
        await ensure_core_schema(pool)
