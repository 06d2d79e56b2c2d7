"""The pool hands out clean connections: a transaction left open is rolled back on release,
JSON columns come back as Python values, and a server that stops answering fails each wait by its
deadline instead of holding the caller."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Iterator

import pytest

from happ_integ.embedded import EmbeddedPostgres
from happ_integ.embedded.process import free_port
from happ_integ.errors import DependencyUnavailable
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


# --- A server that stops answering -------------------------------------------------------------
# Its connections stay open but silent (SIGSTOP), unlike a stopped server that refuses them: every
# wait on it must end by its deadline, a cancelled one at once, and the pool must work again after.


@pytest.fixture(scope="module")
def frozen_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this module's own, never the session's: these tests freeze it."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("frozen") / "pg", port=free_port())
    server.start()
    yield server
    server.stop()  # thaws it first


async def _elapsed(work: Awaitable[object]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        await work
    except BaseException as exc:  # what it fails with is the point
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


async def test_a_silent_server_fails_each_step_by_its_deadline_and_loses_nothing(
    frozen_pg: EmbeddedPostgres,
) -> None:
    pool = await create_pool(frozen_pg.url, min_size=2, max_size=2, timeout_seconds=1)
    try:
        await pool.execute("CREATE TABLE IF NOT EXISTS silent_writes (n int)")
        await pool.execute("TRUNCATE silent_writes")

        async def write_in_a_transaction() -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO silent_writes VALUES (1)")

        frozen_pg.freeze()
        try:
            # A statement on an open connection, one in a transaction, then a new connection
            # (both open ones were closed by their timeouts): each is PostgreSQL's 503 kind, in
            # about a second (the old pool waited 30 s for the statement, then 30 s more).
            for work in (pool.fetchval("SELECT 1"), write_in_a_transaction(), pool.fetchval("SELECT 2")):
                error, seconds = await _elapsed(work)
                assert isinstance(error, DependencyUnavailable) and error.dependency == "PostgreSQL", error
                assert seconds < 4, seconds
        finally:
            frozen_pg.thaw()
        # Back: every connection the pool hands out works, outside any transaction, and the
        # interrupted write was rolled back.
        for _ in range(6):
            async with pool.acquire() as conn:
                assert not conn.is_in_transaction()
                assert await conn.fetchval("SELECT count(*) FROM silent_writes") == 0
    finally:
        await pool.close()


async def test_a_cancelled_wait_on_a_silent_server_ends_at_once(frozen_pg: EmbeddedPostgres) -> None:
    """A caller with a deadline of its own (agent-init's) gets control back when it cancels,
    whatever the pool's deadline: the connection is closed, not waited on."""
    pool = await create_pool(frozen_pg.url, min_size=2, max_size=2, timeout_seconds=30)
    try:
        await pool.execute("CREATE TABLE IF NOT EXISTS silent_writes (n int)")

        async def write_in_a_transaction() -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO silent_writes VALUES (2)")

        frozen_pg.freeze()
        try:
            for work in (pool.fetchval("SELECT 1"), write_in_a_transaction(), pool.fetchval("SELECT 2")):
                error, seconds = await _elapsed(asyncio.wait_for(work, 0.3))
                assert isinstance(error, TimeoutError), error
                assert seconds < 3, seconds  # the old pool: 31 s, waiting for the cancel's answer
        finally:
            frozen_pg.thaw()
        assert await pool.fetchval("SELECT count(*) FROM silent_writes WHERE n = 2") == 0
    finally:
        await pool.close()


async def test_a_statement_past_its_deadline_stops_on_the_server_too(pg_url: str) -> None:
    """Closing the connection of a timed-out or cancelled statement still sends PostgreSQL the
    cancel request: the statement does not run on, holding its locks."""
    pool = await create_pool(pg_url, min_size=1, max_size=2, timeout_seconds=0.5)
    marker = f"deadline_{uuid.uuid4().hex[:8]}"
    try:
        with pytest.raises(DependencyUnavailable):
            await pool.fetchval(f"SELECT pg_sleep(60) AS {marker}")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.fetchval(f"SELECT pg_sleep(61) AS {marker}"), 0.2)
        deadline = time.monotonic() + 10
        while await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
            f"%{marker}%",
        ):
            assert time.monotonic() < deadline, "the interrupted statements still run on the server"
            await asyncio.sleep(0.1)
    finally:
        await pool.close()
