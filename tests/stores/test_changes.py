"""The change feed: config and secrets kept in each process's memory, ended by PostgreSQL's
notifications, so a change made anywhere (another replica, a hand-written UPDATE) is read
everywhere at once, and nothing is served from memory while the feed cannot hear."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from happ_integ.keys import generate_key
from happ_integ.stores.changes import APPLICATION_NAME, ChangeFeed
from happ_integ.stores.config import ConfigStore
from happ_integ.stores.creds import CredsStore, SecretBox
from happ_integ.stores.schema import ensure_core_schema


async def until(test: Callable[[], Awaitable[bool]], seconds: float = 1.0) -> float:
    """How long `test` took to hold (at most `seconds`, else the test fails)."""
    began = time.monotonic()
    while not await test():
        assert time.monotonic() - began < seconds, "not within the deadline"
        await asyncio.sleep(0.01)
    return time.monotonic() - began


@pytest.fixture
async def feeds(pg_url: str, pool: asyncpg.Pool) -> AsyncIterator[list[ChangeFeed]]:
    """Two processes' feeds (two API replicas, say), both listening."""
    await ensure_core_schema(pool)
    started = [ChangeFeed(pg_url), ChangeFeed(pg_url)]
    for feed in started:
        await feed.start()
    for feed in started:
        await until(lambda feed=feed: _true(feed.live), seconds=10)  # type: ignore[misc]
    yield started
    for feed in started:
        await feed.stop()


async def _true(value: bool) -> bool:
    return value


class Counting:
    """A pool stand-in's count of the reads a store makes (it forwards everything to the real one)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        if name in ("fetch", "fetchval", "fetchrow"):
            self.reads += 1
        return getattr(self.pool, name)


async def test_a_config_change_on_one_replica_is_read_on_the_other_at_once(
    feeds: list[ChangeFeed], pool: asyncpg.Pool, name: str
) -> None:
    one, other = feeds
    writer = ConfigStore(pool, name, changes=one)
    counting = Counting(pool)
    reader = ConfigStore(counting, name, changes=other)  # type: ignore[arg-type]
    await writer.set("call_handling", {"concurrency_limit": 3})
    await until(lambda: _value_is(reader, 3))
    # The reader may have read the value before the NOTIFY of that very write reached it; that
    # notification then (rightly) forgets the copy once. From then on, nothing is read again.
    await until(lambda: _kept_in_memory(reader, counting))
    reads = counting.reads
    for _ in range(20):
        assert (await reader.get("call_handling"))["concurrency_limit"] == 3
    assert counting.reads == reads  # served from memory
    await writer.set("call_handling", {"concurrency_limit": 7})
    took = await until(lambda: _value_is(reader, 7))
    assert took < 1.0
    # A change nobody's store made (a hand-written UPDATE) is heard the same way.
    await pool.execute(
        "UPDATE happ_config SET value = '{\"concurrency_limit\": 9}' WHERE integration = $1", name
    )
    await until(lambda: _value_is(reader, 9))


async def _kept_in_memory(store: ConfigStore, counting: Counting) -> bool:
    """True when a read of the value was served without PostgreSQL."""
    before = counting.reads
    await store.get("call_handling")
    return counting.reads == before


async def _value_is(store: ConfigStore, limit: int) -> bool:
    value = await store.get("call_handling")
    return value is not None and value["concurrency_limit"] == limit


async def test_a_secret_set_or_cleared_elsewhere_is_read_at_once(
    feeds: list[ChangeFeed], pool: asyncpg.Pool, name: str
) -> None:
    box = SecretBox(generate_key())
    one, other = feeds
    writer = CredsStore(pool, name, box, changes=one)
    reader = CredsStore(pool, name, box, changes=other)
    await writer.set_many({"WEBHOOK_TOKEN": "first"})
    assert await reader.reveal_some("SENDER_TOKEN", "WEBHOOK_TOKEN") == {"WEBHOOK_TOKEN": "first"}
    await writer.set_many({"WEBHOOK_TOKEN": "second", "SENDER_TOKEN": "own"})

    async def seen() -> bool:
        return await reader.reveal_some("SENDER_TOKEN", "WEBHOOK_TOKEN") == {
            "WEBHOOK_TOKEN": "second",
            "SENDER_TOKEN": "own",
        }

    await until(seen)
    await writer.set_many({"SENDER_TOKEN": ""})
    await until(lambda: _is_none(reader.reveal("SENDER_TOKEN")))


async def _is_none(value: Awaitable[object]) -> bool:
    return await value is None


async def test_a_read_that_raced_a_change_is_not_kept(feeds: list[ChangeFeed], name: str) -> None:
    feed = feeds[0]
    release = asyncio.Event()

    async def slow_old_value() -> str:
        await release.wait()
        return "old"

    reading = asyncio.create_task(feed.cached("config", name, slow_old_value))
    await asyncio.sleep(0.05)
    feed.forget("config", name)  # the change's notification comes while the old value is read
    release.set()
    assert await reading == "old"  # the reader that asked first gets what it read…

    async def fresh() -> str:
        return "new"

    assert await feed.cached("config", name, fresh) == "new"  # …but it was not kept


async def test_nothing_is_served_from_memory_while_the_feed_cannot_hear(
    feeds: list[ChangeFeed], pool: asyncpg.Pool, name: str
) -> None:
    feed = feeds[1]
    counting = Counting(pool)
    store = ConfigStore(counting, name, changes=feed)  # type: ignore[arg-type]
    await ConfigStore(pool, name).set("k", {"v": 1})
    await until(lambda: _read(store, {"v": 1}))
    # The feed's own connection is cut (a PostgreSQL restart, a proxy's idle timeout).
    await pool.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        APPLICATION_NAME,
    )
    await until(lambda: _true(not feed.live), seconds=5)
    reads = counting.reads
    await store.get("k")
    await store.get("k")
    assert counting.reads == reads + 2  # every read goes to PostgreSQL meanwhile
    await until(lambda: _true(feed.live), seconds=10)  # listening again
    await ConfigStore(pool, name).set("k", {"v": 2})
    await until(lambda: _read(store, {"v": 2}))


async def _read(store: ConfigStore, expected: dict[str, Any]) -> bool:
    return await store.get("k") == expected
