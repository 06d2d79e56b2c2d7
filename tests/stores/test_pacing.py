"""Pacer against a real PostgreSQL: turns shared by every pool (every process), a bounded queue,
hold-offs (a peer's 429) that every pool waits past, digests."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from happ_integ.errors import RetryableError, ValidationFailed
from happ_integ.stores.pacing import Pacer, pacing_key
from happ_integ.stores.pool import create_pool


@pytest.fixture
async def other_pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A second pool on the same database: what another worker process sees."""
    second = await create_pool(pg_url, min_size=1, max_size=4)
    yield second
    await second.close()


@pytest.fixture
def key(unique: str) -> str:
    return f"test:{unique}"


class Sleeps:
    """A `sleep` that records what it was asked to wait, and does not wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_two_pools_together_never_go_faster_than_the_rate(
    pool: asyncpg.Pool, other_pool: asyncpg.Pool, key: str
) -> None:
    per_minute = 1200  # a turn every 50 ms
    interval = timedelta(seconds=60 / per_minute)
    turns_each = 10
    pacers = [Pacer(pool, key, per_minute), Pacer(other_pool, key, per_minute)]
    taken: list[tuple[float, datetime]] = []

    async def worker(pacer: Pacer) -> None:
        for _ in range(turns_each):
            slot = await pacer.turn()
            taken.append((time.monotonic(), slot))

    started = time.monotonic()
    await asyncio.gather(*(worker(p) for p in pacers for _ in range(3)))
    assert len(taken) == 2 * 3 * turns_each

    # The reserved slots (PostgreSQL's clock) are at least one interval apart: exactly, however the
    # six workers on two pools raced for them.
    slots = sorted(slot for _, slot in taken)
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) >= interval

    # And the turns really happened that far apart: any five consecutive turns span four intervals
    # (less a little for a wake-up delayed by the event loop).
    moments = sorted(moment for moment, _ in taken)
    spans = [moments[i + 4] - moments[i] for i in range(len(moments) - 4)]
    assert min(spans) >= 4 * interval.total_seconds() - 0.03
    assert time.monotonic() - started >= (len(taken) - 1) * interval.total_seconds() - 0.03


async def test_the_first_turn_is_now_and_the_next_one_interval_later(pool: asyncpg.Pool, key: str) -> None:
    sleeps = Sleeps()
    pacer = Pacer(pool, key, per_minute=60, sleep=sleeps)
    first = await pacer.turn()
    assert sleeps.waits == []
    second = await pacer.turn()
    assert second - first == timedelta(seconds=1)
    [wait] = sleeps.waits
    assert 0.8 < wait <= 1.0
    stored = await pool.fetchval("SELECT next_at FROM happ_pacing WHERE key = $1", key)
    assert stored == second + timedelta(seconds=1)


async def test_an_idle_key_does_not_bank_turns(pool: asyncpg.Pool, key: str) -> None:
    """After a quiet spell the next turn is now, and the one after it an interval later: no burst."""
    sleeps = Sleeps()
    pacer = Pacer(pool, key, per_minute=6000, sleep=sleeps)  # 10 ms
    await pacer.turn()
    await asyncio.sleep(0.1)
    await pacer.turn()
    assert sleeps.waits == []
    await pacer.turn()
    assert len(sleeps.waits) == 1 and 0 < sleeps.waits[0] <= 0.01


async def test_a_turn_too_far_away_is_not_reserved(pool: asyncpg.Pool, key: str) -> None:
    sleeps = Sleeps()
    pacer = Pacer(pool, key, per_minute=60, max_wait_seconds=1.5, sleep=sleeps)
    await pacer.turn()
    await pacer.turn()  # one second away: within the bound
    queued = await pool.fetchval("SELECT next_at FROM happ_pacing WHERE key = $1", key)
    with pytest.raises(RetryableError) as refused:
        await pacer.turn()  # two seconds away
    assert refused.value.retryable
    assert refused.value.details["retry_after"] >= 0.5
    assert "60 a minute" in refused.value.message
    # A refused turn leaves the queue as it was: attempts that would time out do not lengthen it.
    assert await pool.fetchval("SELECT next_at FROM happ_pacing WHERE key = $1", key) == queued
    assert len(sleeps.waits) == 1


async def test_keys_are_independent(pool: asyncpg.Pool, unique: str) -> None:
    sleeps = Sleeps()
    for name in ("a", "b", "c"):
        await Pacer(pool, f"test:{unique}:{name}", per_minute=1, sleep=sleeps).turn()
    assert sleeps.waits == []


def test_pacing_key_is_a_digest_of_the_credential() -> None:
    secret = "kc-0123456789abcdef"
    key = pacing_key("keycrm", secret)
    assert key.startswith("keycrm:") and secret not in key and "0123456789" not in key
    assert key == pacing_key("keycrm", secret)
    assert key != pacing_key("keycrm", secret + "x")
    assert key.split(":")[1] != pacing_key("nethunt", secret).split(":")[1]
    assert len(key) <= 200


def test_a_pacer_needs_a_rate_and_a_key(pool: asyncpg.Pool) -> None:
    with pytest.raises(ValidationFailed):
        Pacer(pool, "k", per_minute=0)
    with pytest.raises(ValidationFailed):
        Pacer(pool, "", per_minute=60)


async def _next_at(pool: asyncpg.Pool, key: str) -> datetime | None:
    value: datetime | None = await pool.fetchval("SELECT next_at FROM happ_pacing WHERE key = $1", key)
    return value


async def test_a_hold_off_pushes_the_next_turn_of_another_pacer_on_the_key(
    pool: asyncpg.Pool, other_pool: asyncpg.Pool, key: str
) -> None:
    """A 429 seen by one worker holds the key off for every worker: the next slot any pacer of that
    key reserves, on any pool, is past the hold, and the ones after it keep their interval."""
    first = await Pacer(other_pool, key, per_minute=60).turn()
    held_until = await Pacer(pool, key, per_minute=60).hold_off(5)
    assert held_until - first >= timedelta(seconds=5)
    other = Pacer(other_pool, key, per_minute=60)
    slot, wait = await other.reserve()
    assert slot == held_until and 4.5 < wait <= 5.0
    later, _ = await other.reserve()
    assert later - slot == timedelta(seconds=1)
    assert 4.5 < await other.held_for() <= 5.0


async def test_a_hold_off_on_an_idle_key_delays_its_first_turn(
    pool: asyncpg.Pool, other_pool: asyncpg.Pool, key: str
) -> None:
    held_until = await Pacer(pool, key, per_minute=6000).hold_off(3)
    slot, wait = await Pacer(other_pool, key, per_minute=6000).reserve()
    assert slot == held_until and 2.5 < wait <= 3.0


async def test_a_shorter_hold_off_does_not_shorten_a_longer_one(pool: asyncpg.Pool, key: str) -> None:
    pacer = Pacer(pool, key, per_minute=60)
    longer = await pacer.hold_off(8)
    assert await pacer.hold_off(2) == longer
    assert await _next_at(pool, key) == longer
    assert await pacer.hold_off(9) > longer


async def test_a_turn_asleep_when_the_key_is_held_off_waits_past_the_hold(
    pool: asyncpg.Pool, other_pool: asyncpg.Pool, key: str
) -> None:
    """A turn reserved before another worker's hold-off, asleep until its slot, does not send at
    that slot: it wakes, sees the hold and takes a slot past it."""
    waiting = Pacer(other_pool, key, per_minute=300)  # 0.2 s apart
    first = await waiting.turn()
    second = asyncio.create_task(waiting.turn())
    while await _next_at(pool, key) != first + 2 * waiting.interval:
        await asyncio.sleep(0.005)  # until the second turn has reserved its slot (and sleeps)
    held_until = await Pacer(pool, key, per_minute=300).hold_off(1.0)
    slot = await second
    returned_at = await pool.fetchval("SELECT clock_timestamp()")
    assert slot >= held_until > first + waiting.interval
    assert returned_at >= held_until


async def test_a_database_made_before_hold_offs_gets_the_column(pool: asyncpg.Pool, key: str) -> None:
    await pool.execute("ALTER TABLE happ_pacing DROP COLUMN IF EXISTS held_until")
    pacer = Pacer(pool, key, per_minute=60)
    held_until = await pacer.hold_off(2)
    assert await pool.fetchval("SELECT held_until FROM happ_pacing WHERE key = $1", key) == held_until
    assert 1.5 < await pacer.held_for() <= 2.0
