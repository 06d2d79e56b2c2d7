"""Sign-in sessions and the throttle on failed sign-ins, in PostgreSQL so every API replica shares them.

    sessions = SessionStore(pool)
    session_id = await sessions.create("codec", token_id(admin_token), SESSION_TTL)   # the cookie's value
    await sessions.valid(session_id, "codec", token_id(admin_token))   # True until expiry or logout
    await sessions.end(session_id)                                     # logout

    throttle = SignInThrottle(pool)
    wait = await throttle.wait_seconds("203.0.113.7")    # 0: a try is allowed; else 429 + Retry-After
    await throttle.failed("203.0.113.7")                  # a wrong token: counted per address and in all

A session id is 256 random bits; the table keeps its SHA-256 only, so a read of the database
hands out no usable cookie. Each session is bound to the admin token it was opened with
(`token_id`, a digest): a new HAPP_ADMIN_TOKEN ends every session at once.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from happ_integ.stores.schema import with_core_schema

SESSION_TTL = timedelta(hours=12)


def token_id(admin_token: str) -> str:
    """Names an admin token without revealing it, so sessions end when the token changes."""
    return hashlib.sha256(b"happ-session-token:" + admin_token.encode()).hexdigest()[:16]


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


class SessionStore:
    """Random, expiring sessions; see the module docstring."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, purpose: str, token: str, ttl: timedelta = SESSION_TTL) -> str:
        """A new session id (the cookie's value); expired sessions are cleared on the way."""
        session_id = secrets.token_urlsafe(32)

        async def insert() -> None:
            await self.pool.execute("DELETE FROM happ_sessions WHERE expires_at < now()")
            await self.pool.execute(
                """INSERT INTO happ_sessions (digest, purpose, token_id, expires_at)
                   VALUES ($1, $2, $3, now() + $4::interval)""",
                _digest(session_id),
                purpose,
                token,
                ttl,
            )

        await with_core_schema(self.pool, insert)
        return session_id

    async def valid(self, session_id: str, purpose: str, token: str) -> bool:
        if not session_id or len(session_id) > 128:
            return False

        async def find() -> bool:
            return bool(
                await self.pool.fetchval(
                    """SELECT 1 FROM happ_sessions WHERE digest = $1 AND purpose = $2 AND token_id = $3
                       AND expires_at > now()""",
                    _digest(session_id),
                    purpose,
                    token,
                )
            )

        return await with_core_schema(self.pool, find)

    async def end(self, session_id: str) -> bool:
        """Logout: the session is gone for every replica. False when there was none."""
        if not session_id or len(session_id) > 128:
            return False

        async def delete() -> str:
            status: str = await self.pool.execute(
                "DELETE FROM happ_sessions WHERE digest = $1", _digest(session_id)
            )
            return status

        return not (await with_core_schema(self.pool, delete)).endswith(" 0")


@dataclass(frozen=True)
class ThrottleLimits:
    """Failed sign-ins allowed per window: from one client address, and from all of them together
    (a guesser spread over many addresses). Past either, sign-in answers 429 until the window ends."""

    per_address: int = 10
    overall: int = 100
    window_seconds: int = 600


class SignInThrottle:
    """Counts failed sign-ins in fixed windows; see the module docstring."""

    def __init__(self, pool: asyncpg.Pool, limits: ThrottleLimits = ThrottleLimits()) -> None:
        self.pool = pool
        self.limits = limits

    def _window(self) -> tuple[float, float]:
        now = time.time()
        return math.floor(now / self.limits.window_seconds) * self.limits.window_seconds, now

    @staticmethod
    def _scope(address: str) -> str:
        # A digest, not the address: the table needs to tell clients apart, not to know them.
        return "addr:" + hashlib.sha256(address.encode()).hexdigest()[:24]

    async def wait_seconds(self, address: str) -> int:
        """0 when `address` may try now; else the seconds until the window that blocks it ends."""
        start, now = self._window()

        async def counts() -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await self.pool.fetch(
                """SELECT scope, count FROM happ_auth_failures
                   WHERE window_start = to_timestamp($1) AND scope = ANY($2)""",
                start,
                [self._scope(address), "all"],
            )
            return rows

        seen = {r["scope"]: r["count"] for r in await with_core_schema(self.pool, counts)}
        if (
            seen.get(self._scope(address), 0) >= self.limits.per_address
            or seen.get("all", 0) >= self.limits.overall
        ):
            return max(1, math.ceil(start + self.limits.window_seconds - now))
        return 0

    async def failed(self, address: str) -> None:
        """Count one failed sign-in from `address` (and in all)."""
        start, _ = self._window()

        async def count() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                for scope in (self._scope(address), "all"):
                    await conn.execute(
                        """INSERT INTO happ_auth_failures (scope, window_start, count)
                           VALUES ($1, to_timestamp($2), 1)
                           ON CONFLICT (scope, window_start)
                           DO UPDATE SET count = happ_auth_failures.count + 1""",
                        scope,
                        start,
                    )
                # Past windows count for nothing: the table stays small.
                await conn.execute(
                    "DELETE FROM happ_auth_failures WHERE window_start < to_timestamp($1)", start
                )

        await with_core_schema(self.pool, count)
