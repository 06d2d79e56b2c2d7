"""A key-value cache with TTLs in PostgreSQL, one namespace per integration.

    cache = Cache(pool, "sofa")
    await cache.set(f"context:{phone}", response, ttl_seconds=3600)
    await cache.get(f"context:{phone}")                       # the value, or None when missing or expired

Values are stored as JSON (jsonb): a pydantic model goes in as its JSON dump and comes back as a dict.
"""

from __future__ import annotations

import random
from typing import Any

import asyncpg
from pydantic import BaseModel

from happ_integ.errors import ValidationFailed
from happ_integ.stores.db import check_integration
from happ_integ.stores.schema import with_core_schema

# Rows that are never read again would otherwise stay forever; an occasional sweep on write keeps
# the table bounded without a scheduled job.
PURGE_CHANCE = 0.02

_GET = """
SELECT value, expires_at IS NOT NULL AND expires_at <= now() AS expired
FROM happ_cache WHERE integration = $1 AND key = $2
"""
_SET = """
INSERT INTO happ_cache (integration, key, value, expires_at)
VALUES ($1, $2, $3, CASE WHEN $4::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $4::float8) END)
ON CONFLICT (integration, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
"""
_EXPIRED = "expires_at IS NOT NULL AND expires_at <= now()"
_DELETE = "DELETE FROM happ_cache WHERE integration = $1 AND key = $2"
_DELETE_EXPIRED_KEY = f"{_DELETE} AND {_EXPIRED}"
_PURGE = f"DELETE FROM happ_cache WHERE integration = $1 AND {_EXPIRED}"


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > 512:
        raise ValidationFailed("a cache key must be a non-empty string of at most 512 characters")
    return key


def _check_ttl(ttl_seconds: int | None) -> float | None:
    if ttl_seconds is None:
        return None
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int | float) or ttl_seconds <= 0:
        raise ValidationFailed("ttl_seconds must be a positive number of seconds, or None for no expiry")
    return float(ttl_seconds)


class Cache:
    """One integration's cache; see the module docstring for usage."""

    def __init__(self, pool: asyncpg.Pool, integration: str) -> None:
        self.pool = pool
        self.integration = check_integration(integration)

    async def get(self, key: str) -> Any | None:
        """The cached value, or None when the key is missing or expired (an expired row is removed)."""
        _check_key(key)
        row = await with_core_schema(self.pool, lambda: self.pool.fetchrow(_GET, self.integration, key))
        if row is None:
            return None
        if row["expired"]:
            await with_core_schema(
                self.pool, lambda: self.pool.execute(_DELETE_EXPIRED_KEY, self.integration, key)
            )
            return None
        return row["value"]

    async def set(self, key: str, value: Any, ttl_seconds: int | None = None) -> None:
        """Store `value` under `key` (replacing any), for `ttl_seconds` or until deleted.

        Setting None deletes the key: `get` could not tell a cached None from a miss anyway.
        """
        _check_key(key)
        ttl = _check_ttl(ttl_seconds)
        if value is None:
            await self.delete(key)
            return
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        await with_core_schema(self.pool, lambda: self.pool.execute(_SET, self.integration, key, value, ttl))
        if random.random() < PURGE_CHANCE:
            await self.purge_expired()

    async def delete(self, key: str) -> bool:
        """Forget `key`; True if it was there."""
        _check_key(key)
        status = await with_core_schema(
            self.pool,
            lambda: self.pool.execute(_DELETE, self.integration, key),
        )
        return str(status).endswith(" 1")

    async def purge_expired(self) -> int:
        """Delete this integration's expired entries; return how many went."""
        status = await with_core_schema(self.pool, lambda: self.pool.execute(_PURGE, self.integration))
        last = str(status).rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0
