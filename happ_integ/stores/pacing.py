"""Request pacing shared by every process through PostgreSQL: at most `per_minute` turns a minute per key.

    pacer = Pacer(pool, pacing_key("keycrm", api_key), per_minute=60)
    await pacer.turn()          # sleeps until this process's reserved slot, then returns it
    response = await http.get(...)
    if response.status_code == 429:
        await pacer.hold_off(float(response.headers["Retry-After"]))   # no process sends before then

Each turn atomically reserves the next free slot of the key (one upsert on `happ_pacing`: the
slot is `GREATEST(next_at, now())`, and `next_at` moves one interval past it), so the turns of
all workers together are at least `60 / per_minute` seconds apart, however many processes take
them. The wait is measured on PostgreSQL's clock, so the processes' own clocks need not agree.

A peer's 429 says the pacing was not enough (another client of the same key, a lower limit than
configured): `hold_off(seconds)` moves the key's `next_at` and `held_until` to at least
`now() + seconds`, so every turn reserved afterwards, in any process, is past it. A turn reserved
before the hold-off and asleep until its slot looks at `held_until` when it wakes and, when the
key is still held, reserves a new slot past it instead of sending.

A turn further away than `max_wait_seconds` is not reserved: the call raises a `RetryableError`
whose `details["retry_after"]` says when to come back (a durable activity is retried then), so
a long queue does not grow with attempts that would time out while they wait.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

import asyncpg

from happ_integ.errors import RetryableError, ValidationFailed
from happ_integ.stores.schema import ensure_core_schema, with_core_schema

T = TypeVar("T")

DEFAULT_MAX_WAIT_SECONDS = 20.0
# The longest hold-off one answer can impose (a Retry-After of a day would stall the key for a
# day); the same bound a durable retry puts on a peer's Retry-After.
MAX_HOLD_SECONDS = 3600.0

_RESERVE = """
INSERT INTO happ_pacing AS p (key, next_at) VALUES ($1, clock_timestamp() + $2)
ON CONFLICT (key) DO UPDATE
    SET next_at = GREATEST(p.next_at, clock_timestamp()) + $2
    WHERE p.next_at <= clock_timestamp() + $3
RETURNING p.next_at - $2 AS slot,
          GREATEST(extract(epoch FROM p.next_at - $2 - clock_timestamp()), 0)::float8 AS wait
"""
_QUEUED = "SELECT extract(epoch FROM next_at - clock_timestamp())::float8 FROM happ_pacing WHERE key = $1"
# Both columns move to at least `now + hold`, never back: a shorter Retry-After arriving after a
# longer one does not shorten the hold. `next_at` moves too, so a turn reserved from now on is
# past the hold without looking at `held_until`.
_HOLD_OFF = """
WITH h AS (SELECT clock_timestamp() + $2 AS until)
INSERT INTO happ_pacing AS p (key, next_at, held_until) SELECT $1, h.until, h.until FROM h
ON CONFLICT (key) DO UPDATE
    SET next_at = GREATEST(p.next_at, EXCLUDED.held_until),
        held_until = GREATEST(p.held_until, EXCLUDED.held_until)
RETURNING p.held_until
"""
_HELD = """
SELECT GREATEST(extract(epoch FROM held_until - clock_timestamp()), 0)::float8
FROM happ_pacing WHERE key = $1
"""


def pacing_key(service: str, secret: str) -> str:
    """The pacing key of a credential: `pacing_key("keycrm", api_key)` → "keycrm:3f1c…" (a digest,
    never the credential itself, so the table holds nothing worth stealing)."""
    digest = hashlib.sha256(f"happ-pacing\0{service}\0{secret}".encode()).hexdigest()
    return f"{service}:{digest[:40]}"


class Pacer:
    """Turns of one key, `60 / per_minute` seconds apart across every process sharing the database,
    and none while the key is held off after a peer's 429."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        key: str,
        per_minute: float,
        *,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not key or len(key) > 200:
            raise ValidationFailed("a pacing key is 1 to 200 characters")
        if not per_minute > 0:
            raise ValidationFailed(f"per_minute must be positive, got {per_minute!r}")
        self.pool = pool
        self.key = key
        self.per_minute = per_minute
        self.interval = timedelta(seconds=60.0 / per_minute)
        self.max_wait = timedelta(seconds=max(0.0, max_wait_seconds))
        self._sleep = sleep

    async def _run(self, op: Callable[[], Awaitable[T]]) -> T:
        """`op` on the framework's tables, creating them (or `held_until`, which databases made
        before it lack) when they are missing."""

        async def guarded() -> T:
            try:
                return await op()
            except asyncpg.UndefinedColumnError:
                await ensure_core_schema(self.pool)
                return await op()

        return await with_core_schema(self.pool, guarded)

    async def reserve(self) -> tuple[datetime, float]:
        """Reserve the next free slot: `(slot, seconds until it)`. Raises `RetryableError` with
        `details["retry_after"]` when that slot is more than `max_wait_seconds` away."""

        async def reserve() -> asyncpg.Record | None:
            row: asyncpg.Record | None = await self.pool.fetchrow(
                _RESERVE, self.key, self.interval, self.max_wait
            )
            return row

        row = await with_core_schema(self.pool, reserve)
        if row is None:
            queued = await with_core_schema(self.pool, lambda: self.pool.fetchval(_QUEUED, self.key))
            retry_after = max(1.0, round(float(queued or 0) - self.max_wait.total_seconds(), 3))
            raise RetryableError(
                f"the request budget of {self.key.partition(':')[0]} ({self.per_minute:g} a minute) "
                f"is taken for the next {float(queued or 0):.0f}s",
                retry_after=retry_after,
            )
        slot: datetime = row["slot"]
        return slot, float(row["wait"])

    async def held_for(self) -> float:
        """Seconds the key is still held off by a `hold_off` (0 when it is not)."""
        held = await self._run(lambda: self.pool.fetchval(_HELD, self.key))
        return float(held or 0.0)

    async def turn(self) -> datetime:
        """Wait for this caller's turn; returns the reserved slot (PostgreSQL's clock).

        A turn that slept checks, on waking, that no process held the key off meanwhile; if one
        did, it reserves again (past the hold) rather than send into a limit the peer reported.
        A turn that did not sleep needs no check: its slot was free, so no hold covered it."""
        slot, wait = await self.reserve()
        while wait > 0:
            await self._sleep(wait)
            if await self.held_for() <= 0:
                break
            slot, wait = await self.reserve()
        return slot

    async def hold_off(self, seconds: float) -> datetime:
        """No turn of this key, in any process, before `seconds` from now (PostgreSQL's clock), e.g.
        a peer's Retry-After; capped at `MAX_HOLD_SECONDS`. Returns the moment the key is held until
        (a later hold already in place is kept)."""
        hold = timedelta(seconds=min(max(0.0, float(seconds)), MAX_HOLD_SECONDS))
        held: datetime = await self._run(lambda: self.pool.fetchval(_HOLD_OFF, self.key, hold))
        return held
