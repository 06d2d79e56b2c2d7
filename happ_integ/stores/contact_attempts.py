"""Every dial of a number, by any call, campaign or integration sharing the database, and the
`contact_policy` caps checked against them at dial time.

    attempts = ContactAttempts(pool)                          # resources.contact_attempts()
    grant = await attempts.take_attempt("+380994829573", "sofa", "c_1", 2, policy)
    if not grant.allowed:
        ...  # wait until grant.next_allowed_at; grant.reason names the cap
    await attempts.attempts_of("+380994829573", since=now - timedelta(days=1))

`take_attempt` checks the caps and records the attempt in one transaction that holds a lock on
the number (`pg_advisory_xact_lock`), so two workers dialling the same number at once are
answered one after the other: only one of them can take the last attempt of the day. The time of
an attempt is PostgreSQL's clock (`clock_timestamp()`, read after the lock), so the workers'
own clocks need not agree.

A retried activity asks again with the same `(integration, call_id, attempt)`: the attempt is
counted once, and the answer is "allowed" again.
"""

from __future__ import annotations

import re
from datetime import datetime

import asyncpg
from pydantic import BaseModel, ConfigDict

from happ_integ.calls.contact_policy import AttemptGrant, ContactPolicy, NumberAttempts, decide_attempt
from happ_integ.errors import ValidationFailed
from happ_integ.stores.db import check_integration
from happ_integ.stores.schema import with_core_schema

__all__ = ["AttemptGrant", "ContactAttempt", "ContactAttempts"]

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# The first key of the number's advisory lock (the two-key form, whose key space does not overlap
# the one-key form of the schema lock): "catt".
LOCK_SPACE = 0x63617474

_LOCK = "SELECT pg_advisory_xact_lock($1::int4, hashtext($2))"
_TAKEN = """
SELECT true FROM happ_contact_attempts WHERE integration = $1 AND call_id = $2 AND attempt = $3
"""
# `cap_at`: the max_attempts_per_day-th most recent attempt in the 24 hours before `now`; when it
# exists the cap is reached, and its expiry is when an attempt is free again.
_STATE = """
WITH t AS (SELECT COALESCE($2::timestamptz, clock_timestamp()) AS now)
SELECT t.now,
       (SELECT max(a.at) FROM happ_contact_attempts a WHERE a.phone = $1) AS latest_at,
       (SELECT a.at FROM happ_contact_attempts a
         WHERE a.phone = $1 AND a.at > t.now - interval '24 hours'
         ORDER BY a.at DESC OFFSET $3 - 1 LIMIT 1) AS cap_at,
       (SELECT count(*) FROM happ_contact_attempts a
         WHERE a.phone = $1 AND a.at > t.now - interval '24 hours')::int AS in_window
FROM t
"""
_RECORD = """
INSERT INTO happ_contact_attempts (phone, at, integration, call_id, attempt) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (integration, call_id, attempt) DO NOTHING
"""
# Each number's state for `decide_attempt`, many numbers in one read (the preflight's).
_STATES = """
WITH t AS (SELECT COALESCE($2::timestamptz, clock_timestamp()) AS now),
recent AS (
    SELECT a.phone, a.at, row_number() OVER (PARTITION BY a.phone ORDER BY a.at DESC) AS k
    FROM happ_contact_attempts a, t
    WHERE a.phone = ANY($1::text[]) AND a.at > t.now - interval '24 hours'
)
SELECT p.phone, t.now,
       (SELECT max(a.at) FROM happ_contact_attempts a WHERE a.phone = p.phone) AS latest_at,
       (SELECT r.at FROM recent r WHERE r.phone = p.phone AND r.k = $3) AS cap_at,
       (SELECT count(*) FROM recent r WHERE r.phone = p.phone)::int AS in_window
FROM unnest($1::text[]) AS p(phone), t
"""
_PURGE = """
WITH doomed AS (
    SELECT integration, call_id, attempt FROM happ_contact_attempts WHERE at < $1 ORDER BY at LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM happ_contact_attempts a USING doomed
WHERE (a.integration, a.call_id, a.attempt) = (doomed.integration, doomed.call_id, doomed.attempt)
"""
_OF = """
SELECT phone, at, integration, call_id, attempt FROM happ_contact_attempts
WHERE phone = $1 AND at >= $2 ORDER BY at, integration, call_id, attempt
"""


class ContactAttempt(BaseModel):
    """One recorded dial of a number."""

    model_config = ConfigDict(frozen=True)

    phone: str
    at: datetime
    integration: str
    call_id: str
    attempt: int


def _check_phone(phone: str) -> str:
    if not isinstance(phone, str) or not E164.match(phone):
        # The number itself is not repeated: it is personal data, and errors reach logs.
        raise ValidationFailed(
            "a contact attempt needs the number in E.164 (+ and 7 to 15 digits)", field="phone"
        )
    return phone


class ContactAttempts:
    """The `happ_contact_attempts` table, shared by every integration; see the module docstring."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def take_attempt(
        self,
        phone: str,
        integration: str,
        call_id: str,
        attempt: int,
        policy: ContactPolicy,
        now: datetime | None = None,
    ) -> AttemptGrant:
        """Record attempt `attempt` of call `call_id` on `phone` when `policy` allows it now, in one
        step no other worker can come between; answer whether it did.

        `now` replaces PostgreSQL's clock (tests); a timezone-aware datetime.
        """
        _check_phone(phone)
        check_integration(integration)
        if not isinstance(call_id, str) or not 0 < len(call_id) <= 200:
            raise ValidationFailed("a call id is 1 to 200 characters", field="call_id")
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValidationFailed("an attempt is numbered from 1", field="attempt")
        if now is not None and now.tzinfo is None:
            raise ValidationFailed("now must be timezone-aware", field="now")

        async def take() -> AttemptGrant:
            # READ COMMITTED whatever the server's default: each statement after the lock sees
            # the attempts committed by whoever held it before.
            async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
                await conn.execute(_LOCK, LOCK_SPACE, phone)
                if await conn.fetchval(_TAKEN, integration, call_id, attempt):
                    return AttemptGrant(allowed=True)
                state = await conn.fetchrow(_STATE, phone, now, policy.max_attempts_per_day)
                grant = decide_attempt(
                    policy,
                    state["now"],
                    latest_at=state["latest_at"],
                    cap_at=state["cap_at"],
                    in_window=state["in_window"],
                )
                if grant.allowed:
                    await conn.execute(_RECORD, phone, state["now"], integration, call_id, attempt)
                return grant

        return await with_core_schema(self.pool, take)

    async def states_of(
        self, phones: list[str], policy: ContactPolicy, now: datetime | None = None
    ) -> tuple[datetime, dict[str, NumberAttempts]]:
        """PostgreSQL's time and each number's recent attempts as `decide_attempt` reads them, in
        one read and without taking any; numbers never dialled are left out."""
        for phone in phones:
            _check_phone(phone)
        unique = sorted(set(phones))
        rows = await with_core_schema(
            self.pool, lambda: self.pool.fetch(_STATES, unique, now, policy.max_attempts_per_day)
        )
        at = rows[0]["now"] if rows else (now or await self.pool.fetchval("SELECT clock_timestamp()"))
        states = {
            r["phone"]: NumberAttempts(latest_at=r["latest_at"], cap_at=r["cap_at"], in_window=r["in_window"])
            for r in rows
            if r["latest_at"] is not None
        }
        return at, states

    async def purge(self, older_than: datetime, batch: int = 1000) -> int:
        """Delete the attempts made before `older_than`, `batch` rows per statement; how many went.
        The caps look back 24 hours at most (`min_minutes_between_attempts` is at most 1440), so
        an attempt older than that decides nothing and is only a number kept for no reason."""
        total = 0
        while True:
            status = await with_core_schema(self.pool, lambda: self.pool.execute(_PURGE, older_than, batch))
            count = int(status.rsplit(" ", 1)[-1])
            total += count
            if count < batch:
                return total

    async def attempts_of(self, phone: str, since: datetime) -> list[ContactAttempt]:
        """The attempts on `phone` at or after `since`, oldest first, from every integration."""
        _check_phone(phone)
        rows = await with_core_schema(self.pool, lambda: self.pool.fetch(_OF, phone, since))
        return [ContactAttempt(**dict(row)) for row in rows]
