"""Per-handler rate limits, in PostgreSQL so every API replica counts against the same window.

limiter = RateLimiter(pool, "sofa", "echo")
decision = await limiter.take(requests=3, per_seconds=60)
if not decision.allowed: answer 429 with Retry-After: decision.retry_after_seconds
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import asyncpg

from happ_integ.stores.db import check_integration
from happ_integ.stores.schema import with_core_schema


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: int = 0


class RateLimiter:
    """A fixed window of `per_seconds` per handler; one atomic upsert per request."""

    def __init__(self, pool: asyncpg.Pool, integration: str, handler: str) -> None:
        self.pool = pool
        self.integration = check_integration(integration)
        self.handler = handler

    async def take(self, requests: int, per_seconds: int) -> RateDecision:
        now = time.time()
        window_start = math.floor(now / per_seconds) * per_seconds

        async def take() -> int:
            count: int = await self.pool.fetchval(
                """INSERT INTO happ_rate_limits (integration, handler, window_start, count)
                   VALUES ($1, $2, to_timestamp($3), 1)
                   ON CONFLICT (integration, handler, window_start)
                   DO UPDATE SET count = happ_rate_limits.count + 1
                   RETURNING count""",
                self.integration,
                self.handler,
                window_start,
            )
            if count == 1:
                # The first request of a window clears old windows, so the table stays small.
                await self.pool.execute(
                    "DELETE FROM happ_rate_limits WHERE integration = $1 AND handler = $2"
                    " AND window_start < to_timestamp($3)",
                    self.integration,
                    self.handler,
                    window_start,
                )
            return count

        count = await with_core_schema(self.pool, take)
        if count <= requests:
            return RateDecision(True)
        return RateDecision(False, max(1, math.ceil(window_start + per_seconds - now)))
