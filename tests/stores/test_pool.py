"""The pool hands out clean connections: a transaction left open is rolled back on release,
and JSON columns come back as Python values."""

from __future__ import annotations

from happ_integ.stores.pool import create_pool


async def test_a_transaction_left_open_is_rolled_back_on_release(pg_url: str) -> None:
    pool = await create_pool(pg_url, min_size=1, max_size=1)
    try:
        await pool.execute("CREATE TABLE IF NOT EXISTS pool_release (n int)")
        conn = await pool.acquire()
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("INSERT INTO pool_release VALUES (1)")
        await pool.release(conn)  # as a handler that failed half-way would leave it
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT count(*) FROM pool_release") == 0
    finally:
        await pool.close()


async def test_json_is_decoded(pg_url: str) -> None:
    pool = await create_pool(pg_url, min_size=1, max_size=1)
    try:
        assert await pool.fetchval("""SELECT '{"a": [1, "б"]}'::jsonb""") == {"a": [1, "б"]}
    finally:
        await pool.close()
