"""Dedup and rate limits, kept in PostgreSQL so every API replica shares them."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from happ_integ.handler import Dedup, RateLimit
from happ_integ.stores.schema import with_core_schema


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: int = 0


async def take_rate_slot(
    pool: asyncpg.Pool, integration: str, handler: str, limit: RateLimit
) -> RateDecision:
    """Fixed window of `per_seconds`; one atomic upsert per request."""
    now = time.time()
    window_start = math.floor(now / limit.per_seconds) * limit.per_seconds

    async def take() -> int:
        count: int = await pool.fetchval(
            """INSERT INTO happ_rate_limits (integration, handler, window_start, count)
               VALUES ($1, $2, to_timestamp($3), 1)
               ON CONFLICT (integration, handler, window_start)
               DO UPDATE SET count = happ_rate_limits.count + 1
               RETURNING count""",
            integration,
            handler,
            window_start,
        )
        if count == 1:
            # The first request of a window clears old windows, so the table stays small.
            await pool.execute(
                "DELETE FROM happ_rate_limits WHERE integration = $1 AND handler = $2 AND window_start < to_timestamp($3)",
                integration,
                handler,
                window_start,
            )
        return count

    count = await with_core_schema(pool, take)
    if count <= limit.requests:
        return RateDecision(True)
    return RateDecision(False, max(1, math.ceil(window_start + limit.per_seconds - now)))


@dataclass(frozen=True)
class DedupClaim:
    """`first=True`: this request runs the handler. Otherwise `response` is the first answer (None: still running)."""

    first: bool
    response: dict[str, Any] | None = None
    status_code: int = 200


async def claim_dedup(
    pool: asyncpg.Pool, integration: str, handler: str, key: str, dedup: Dedup, hold_seconds: float
) -> DedupClaim:
    """Claim `key`; an unfinished claim lapses after `hold_seconds`, so a crashed run cannot block its key."""

    async def claim() -> DedupClaim:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM happ_dedup WHERE integration = $1 AND handler = $2 AND key = $3 AND expires_at <= now()",
                integration,
                handler,
                key,
            )
            inserted = await conn.fetchval(
                """INSERT INTO happ_dedup (integration, handler, key, response, status_code, expires_at)
                   VALUES ($1, $2, $3, NULL, NULL, now() + make_interval(secs => $4))
                   ON CONFLICT DO NOTHING RETURNING 1""",
                integration,
                handler,
                key,
                float(min(hold_seconds, dedup.ttl_seconds)),
            )
            if inserted:
                return DedupClaim(first=True)
            row = await conn.fetchrow(
                "SELECT response, status_code FROM happ_dedup WHERE integration = $1 AND handler = $2 AND key = $3",
                integration,
                handler,
                key,
            )
        if row is None or row["response"] is None:
            return DedupClaim(first=False)
        response = row["response"]
        return DedupClaim(
            first=False,
            response=json.loads(response) if isinstance(response, str) else response,
            status_code=row["status_code"] or 200,
        )

    return await with_core_schema(pool, claim)


async def complete_dedup(
    pool: asyncpg.Pool,
    integration: str,
    handler: str,
    key: str,
    dedup: Dedup,
    response: dict[str, Any],
    status_code: int,
) -> None:
    """Keep the first answer for the rest of the TTL, counted from now."""
    await with_core_schema(
        pool,
        lambda: pool.execute(
            "UPDATE happ_dedup SET response = $4, status_code = $5, expires_at = now() + make_interval(secs => $6) "
            "WHERE integration = $1 AND handler = $2 AND key = $3",
            integration,
            handler,
            key,
            response,
            status_code,
            float(dedup.ttl_seconds),
        ),
    )


async def release_dedup(pool: asyncpg.Pool, integration: str, handler: str, key: str) -> None:
    """A failed run gives the key back, so the sender's retry runs the handler again."""
    await with_core_schema(
        pool,
        lambda: pool.execute(
            "DELETE FROM happ_dedup WHERE integration = $1 AND handler = $2 AND key = $3 AND response IS NULL",
            integration,
            handler,
            key,
        ),
    )
