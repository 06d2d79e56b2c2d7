"""Webhook deduplication, in PostgreSQL so every API replica shares it.

dedup = DedupStore(pool, "sofa", "nethunt")
claim = await dedup.claim("rec-1", ttl_seconds=600, hold_seconds=65)
if claim.first: ...run..., then await dedup.complete("rec-1", 600, body, 200)
elif claim.response is not None: answer claim.response   # the first delivery's answer
await dedup.release("rec-1")                             # a failed run gives the key back
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from happ_integ.stores.db import check_integration
from happ_integ.stores.schema import with_core_schema


@dataclass(frozen=True)
class DedupClaim:
    """`first=True`: this request runs the handler. Otherwise `response` is the first answer (None: still running)."""

    first: bool
    response: dict[str, Any] | None = None
    status_code: int = 200


class DedupStore:
    """The dedup keys of one handler of one integration."""

    def __init__(self, pool: asyncpg.Pool, integration: str, handler: str) -> None:
        self.pool = pool
        self.integration = check_integration(integration)
        self.handler = handler

    async def claim(self, key: str, ttl_seconds: float, hold_seconds: float) -> DedupClaim:
        """Claim `key`; an unfinished claim lapses after `hold_seconds`, so a crashed run cannot block its key."""

        async def claim() -> DedupClaim:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "DELETE FROM happ_dedup WHERE integration = $1 AND handler = $2 AND key = $3"
                    " AND expires_at <= now()",
                    self.integration,
                    self.handler,
                    key,
                )
                inserted = await conn.fetchval(
                    """INSERT INTO happ_dedup (integration, handler, key, response, status_code, expires_at)
                       VALUES ($1, $2, $3, NULL, NULL, now() + make_interval(secs => $4))
                       ON CONFLICT DO NOTHING RETURNING 1""",
                    self.integration,
                    self.handler,
                    key,
                    float(min(hold_seconds, ttl_seconds)),
                )
                if inserted:
                    return DedupClaim(first=True)
                row = await conn.fetchrow(
                    "SELECT response, status_code FROM happ_dedup"
                    " WHERE integration = $1 AND handler = $2 AND key = $3",
                    self.integration,
                    self.handler,
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

        return await with_core_schema(self.pool, claim)

    async def complete(
        self, key: str, ttl_seconds: float, response: dict[str, Any], status_code: int
    ) -> None:
        """Keep the first answer for the rest of the TTL, counted from now."""
        await with_core_schema(
            self.pool,
            lambda: self.pool.execute(
                "UPDATE happ_dedup SET response = $4, status_code = $5,"
                " expires_at = now() + make_interval(secs => $6)"
                " WHERE integration = $1 AND handler = $2 AND key = $3",
                self.integration,
                self.handler,
                key,
                response,
                status_code,
                float(ttl_seconds),
            ),
        )

    async def release(self, key: str) -> None:
        """Give an unfinished claim back, so the sender's retry runs the handler again."""
        await with_core_schema(
            self.pool,
            lambda: self.pool.execute(
                "DELETE FROM happ_dedup WHERE integration = $1 AND handler = $2 AND key = $3"
                " AND response IS NULL",
                self.integration,
                self.handler,
                key,
            ),
        )
