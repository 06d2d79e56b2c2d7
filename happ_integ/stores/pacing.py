"""Request pacing shared by every process through PostgreSQL: at most `per_minute` turns a minute per key.

    pacer = Pacer(pool, pacing_key("keycrm", api_key), per_minute=60)
    await pacer.turn()          # sleeps until this process's reserved slot, then returns it
    response = await http.get(...)

Each turn atomically reserves the next free slot of the key (one upsert on `happ_pacing`: the
slot is `GREATEST(next_at, now())`, and `next_at` moves one interval past it), so the turns of
all workers together are at least `60 / per_minute` seconds apart, however many processes take
them. The wait is measured on PostgreSQL's clock, so the processes' own clocks need not agree.

A turn further away than `max_wait_seconds` is not reserved: the call raises a `RetryableError`
whose `details["retry_after"]` says when to come back (a durable activity is retried then), so
a long queue does not grow with attempts that would time out while they wait.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg

from happ_integ.errors import RetryableError, ValidationFailed
from happ_integ.stores.schema import with_core_schema

DEFAULT_MAX_WAIT_SECONDS = 20.0

_RESERVE = """
INSERT INTO happ_pacing AS p (key, next_at) VALUES ($1, clock_timestamp() + $2)
ON CONFLICT (key) DO UPDATE
    SET next_at = GREATEST(p.next_at, clock_timestamp()) + $2
    WHERE p.next_at <= clock_timestamp() + $3
RETURNING p.next_at - $2 AS slot,
          GREATEST(extract(epoch FROM p.next_at - $2 - clock_timestamp()), 0)::float8 AS wait
"""
_QUEUED = "SELECT extract(epoch FROM next_at - clock_timestamp())::float8 FROM happ_pacing WHERE key = $1"


def pacing_key(service: str, secret: str) -> str:
    """The pacing key of a credential: `pacing_key("keycrm", api_key)` → "keycrm:3f1c…" (a digest,
    never the credential itself, so the table holds nothing worth stealing)."""
    digest = hashlib.sha256(f"happ-pacing\0{service}\0{secret}".encode()).hexdigest()
    return f"{service}:{digest[:40]}"


class Pacer:
    """Turns of one key, `60 / per_minute` seconds apart across every process sharing the database."""

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

    async def turn(self) -> datetime:
        """Wait for this caller's turn; returns the reserved slot (PostgreSQL's clock)."""
        slot, wait = await self.reserve()
        if wait > 0:
            await self._sleep(wait)
        return slot
