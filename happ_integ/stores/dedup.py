"""Webhook deduplication, in PostgreSQL so every API replica shares it.

dedup = DedupStore(pool, "sofa", "nethunt")
claim = await dedup.claim("rec-1", ttl_seconds=600, hold_seconds=65, digest="ab12…")
if claim.conflict: ...the key came with another request (409)...
if claim.first: ...run..., then await dedup.complete("rec-1", 600, body, 200)
elif claim.response is not None: answer claim.response   # the first delivery's answer
await dedup.release("rec-1")                             # a failed run gives the key back

Every claim also deletes a few rows whose time has passed (`PURGE_BATCH`, any integration's):
the table holds the keys still remembered, not every key ever seen.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from happ_integ.stores.db import check_integration
from happ_integ.stores.schema import ensure_core_schema, with_core_schema

T = TypeVar("T")
# Expired rows deleted by each claim. A claim adds at most one row, so the table cannot grow past
# the keys still within their TTL plus what one busy moment added; the index on expires_at makes
# finding them cheap, and SKIP LOCKED keeps concurrent claims from waiting on each other.
PURGE_BATCH = 20
_PURGE = f"""
DELETE FROM happ_dedup WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM happ_dedup WHERE expires_at <= now()
    ORDER BY expires_at LIMIT {PURGE_BATCH} FOR UPDATE SKIP LOCKED
))"""


@dataclass(frozen=True)
class DedupClaim:
    """`first=True`: this request runs the handler. Otherwise `response` is the first answer (None:
    still running). `conflict=True`: the key is held by a request with another digest."""

    first: bool
    response: dict[str, Any] | None = None
    status_code: int = 200
    conflict: bool = False


class DedupStore:
    """The dedup keys of one handler of one integration."""

    def __init__(self, pool: asyncpg.Pool, integration: str, handler: str) -> None:
        self.pool = pool
        self.integration = check_integration(integration)
        self.handler = handler

    async def claim(
        self, key: str, ttl_seconds: float, hold_seconds: float, digest: str | None = None
    ) -> DedupClaim:
        """Claim `key`; an unfinished claim lapses after `hold_seconds`, so a crashed run cannot block its key.

        `digest` (of the request) is kept with the key: the same key later with another digest is
        a `conflict`, not the first request's answer. None compares with nothing (dedup by an
        event's id, where a redelivery may differ in its other fields).
        """

        async def claim() -> DedupClaim:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "DELETE FROM happ_dedup WHERE integration = $1 AND handler = $2 AND key = $3"
                    " AND expires_at <= now()",
                    self.integration,
                    self.handler,
                    key,
                )
                await conn.execute(_PURGE)
                inserted = await conn.fetchval(
                    """INSERT INTO happ_dedup (integration, handler, key, response, status_code, expires_at, digest)
                       VALUES ($1, $2, $3, NULL, NULL, now() + make_interval(secs => $4), $5)
                       ON CONFLICT DO NOTHING RETURNING 1""",
                    self.integration,
                    self.handler,
                    key,
                    float(min(hold_seconds, ttl_seconds)),
                    digest,
                )
                if inserted:
                    return DedupClaim(first=True)
                row = await conn.fetchrow(
                    "SELECT response, status_code, digest FROM happ_dedup"
                    " WHERE integration = $1 AND handler = $2 AND key = $3",
                    self.integration,
                    self.handler,
                    key,
                )
            if row is not None and digest is not None and row["digest"] not in (None, digest):
                return DedupClaim(first=False, conflict=True)
            if row is None or row["response"] is None:
                return DedupClaim(first=False)
            response = row["response"]
            return DedupClaim(
                first=False,
                response=json.loads(response) if isinstance(response, str) else response,
                status_code=row["status_code"] or 200,
            )

        return await self._run(claim)

    async def complete(
        self, key: str, ttl_seconds: float, response: dict[str, Any], status_code: int
    ) -> None:
        """Keep the first answer for the rest of the TTL, counted from now."""
        await self._run(
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
        await self._run(
            lambda: self.pool.execute(
                "DELETE FROM happ_dedup WHERE integration = $1 AND handler = $2 AND key = $3"
                " AND response IS NULL",
                self.integration,
                self.handler,
                key,
            ),
        )

    async def _run(self, op: Callable[[], Awaitable[T]]) -> T:
        """`op` with the framework's tables in place, `digest` included on a database made before it."""

        async def with_columns() -> T:
            try:
                return await op()
            except asyncpg.UndefinedColumnError:
                await ensure_core_schema(self.pool)
                return await op()

        return await with_core_schema(self.pool, with_columns)
