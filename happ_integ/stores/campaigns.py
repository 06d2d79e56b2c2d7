"""The campaigns of an integration and their recipients: `{integration}_campaigns` and
`{integration}_campaign_recipients`.

    store = CampaignStore(pool, "sofa")
    created, row = await store.create("cmp_1", "Webinar", settings, recipients)
    await store.next_pending("cmp_1", limit=10)           # recipients whose call has not started
    await store.record_call(CallRecord(...))              # a campaign call's status, on its recipient
    counts, outcomes, total = await store.counts("cmp_1")
    async for row in store.report_rows("cmp_1"): ...       # one row per recipient, by a cursor

The `Campaign` workflow owns the campaign's progress; these tables are its record, so a campaign
can be listed, counted and reported on without asking Temporal, and its recipients never travel
in workflow history. A recipient's status is its current call's, written by the call's own
`call.record` activity.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from happ_integ.calls.contracts import CallRecord
from happ_integ.campaigns.models import (
    CLOSED_CAMPAIGN,
    FINAL_RECIPIENT,
    CampaignSettings,
    CampaignStatus,
    RecipientStatus,
)
from happ_integ.campaigns.recipients import Recipient
from happ_integ.errors import Conflict, NotFound
from happ_integ.stores.calls import IN_FLIGHT
from happ_integ.stores.db import quote_ident, table_name
from happ_integ.stores.migrations import Migration
from happ_integ.stores.paging import newest_first, one_page, read_cursor
from happ_integ.stores.schema import pg_errors, to_json

CAMPAIGN_MIGRATIONS = (
    Migration(
        "happ_campaigns_001",
        """
        CREATE TABLE {{campaigns}} (
            campaign_id      text PRIMARY KEY,
            name             text NOT NULL,
            status           text NOT NULL,
            settings         jsonb NOT NULL DEFAULT '{}',
            cancel_requested boolean NOT NULL DEFAULT false,
            request_hash     text,
            answer           jsonb,
            created_at       timestamptz NOT NULL DEFAULT now(),
            started_at       timestamptz,
            finished_at      timestamptz,
            updated_at       timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX ON {{campaigns}} (created_at DESC, campaign_id DESC);
        CREATE TABLE {{campaign_recipients}} (
            campaign_id     text NOT NULL REFERENCES {{campaigns}} ON DELETE CASCADE,
            recipient_id    text NOT NULL,
            seq             bigint NOT NULL,
            phone           text NOT NULL,
            variables       jsonb NOT NULL DEFAULT '{}',
            metadata        jsonb NOT NULL DEFAULT '{}',
            status          text NOT NULL DEFAULT 'pending',
            round           int NOT NULL DEFAULT 0,
            call_id         text,
            outcome         text,
            summary         text,
            attempts        int NOT NULL DEFAULT 0,
            attempts_before int NOT NULL DEFAULT 0,
            last_attempt_at timestamptz,
            updated_at      timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (campaign_id, recipient_id)
        );
        CREATE UNIQUE INDEX ON {{campaign_recipients}} (campaign_id, seq);
        CREATE INDEX ON {{campaign_recipients}} (campaign_id, status, seq);
        CREATE INDEX ON {{campaign_recipients}} (call_id) WHERE call_id IS NOT NULL;
        """,
    ),
    Migration(
        "happ_campaigns_002",
        # Why a recipient is where it is: its call's reason (ended, or held back by a cap), or why
        # it waits for its call (another call to the number is in flight).
        "ALTER TABLE {{campaign_recipients}} ADD COLUMN reason text;",
    ),
)

_CAMPAIGN = (
    "campaign_id, name, status, settings, cancel_requested, created_at, started_at, finished_at, updated_at"
)
_RECIPIENT = (
    "recipient_id, seq, phone, variables, metadata, status, round, call_id, outcome, summary, reason,"
    " attempts, last_attempt_at, updated_at"
)
_FINAL = [s.value for s in FINAL_RECIPIENT]


def _not_started(skip: str) -> str:
    """SQL: recipient `r` of campaign $1 is pending and its call is none of those the campaign
    already follows (the text[] parameter `skip`; their recipients stay pending until their call's
    first status)."""
    return (
        "r.campaign_id = $1 AND r.status = 'pending'"
        f" AND (r.call_id IS NULL OR NOT r.call_id = ANY({skip}::text[]))"
    )


# The reason of a recipient whose call had not started when its campaign stopped.
_STOPPED = {
    RecipientStatus.CANCELLED: "the campaign was cancelled before its call started",
    RecipientStatus.EXPIRED: "the campaign's end_at came before its call started",
}
# A call stopped because the campaign's end_at came reports `cancelled`; its recipient stays `expired`.
_KEEP_EXPIRED = "CASE WHEN r.status = 'expired' AND $2 = 'cancelled' THEN 'expired' ELSE $2 END"


class CampaignStore:
    """The campaigns and recipients of one integration; see the module docstring."""

    def __init__(self, pool: asyncpg.Pool, integration: str) -> None:
        self.pool = pool
        self.integration = integration
        self.campaigns = quote_ident(table_name(integration, "campaigns"))
        self.recipients = quote_ident(table_name(integration, "campaign_recipients"))
        self.calls = quote_ident(table_name(integration, "calls"))

    # Creating and appending -----------------------------------------------------------------------

    async def create(
        self,
        campaign_id: str,
        name: str,
        settings: CampaignSettings,
        recipients: builtins.list[Recipient],
        request_hash: str | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """Store a new campaign and its recipients, or return the one stored under this id:
        `(created, row)`; the row has `request_hash` and `answer` for a repeated request."""
        with pg_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                created = await conn.fetchval(
                    f"""INSERT INTO {self.campaigns} (campaign_id, name, status, settings, request_hash)
                        VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING campaign_id""",
                    campaign_id,
                    name,
                    # What the workflow will write first: `scheduled` until start_at.
                    (CampaignStatus.SCHEDULED if settings.start_at else CampaignStatus.RUNNING).value,
                    settings.model_dump(mode="json"),
                    request_hash,
                )
                if created:
                    await self._insert(conn, campaign_id, recipients, 1)
                row = await conn.fetchrow(
                    f"SELECT {_CAMPAIGN}, request_hash, answer FROM {self.campaigns} WHERE campaign_id = $1",
                    campaign_id,
                )
        assert row is not None
        return bool(created), dict(row)

    async def save_answer(self, campaign_id: str, answer: dict[str, Any]) -> None:
        """What creating the campaign answered, for a request repeated with its Idempotency-Key."""
        with pg_errors():
            await self.pool.execute(
                f"UPDATE {self.campaigns} SET answer = $2 WHERE campaign_id = $1", campaign_id, answer
            )

    async def delete(self, campaign_id: str) -> None:
        """Remove a campaign whose workflow never started (Temporal refused it)."""
        with pg_errors():
            await self.pool.execute(f"DELETE FROM {self.campaigns} WHERE campaign_id = $1", campaign_id)

    async def append(
        self, campaign_id: str, recipients: builtins.list[Recipient]
    ) -> tuple[set[str], dict[str, Any]]:
        """Add recipients to a campaign that is not finished or cancelled (else Conflict): the ids
        stored (one the campaign already had is not), and the campaign's row."""
        with pg_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                # The row lock orders this with the workflow's `finish`, which needs no pending recipient.
                row = await conn.fetchrow(
                    f"SELECT {_CAMPAIGN} FROM {self.campaigns} WHERE campaign_id = $1 FOR UPDATE", campaign_id
                )
                if row is None:
                    raise NotFound(f"no campaign {campaign_id!r}")
                if row["status"] in CLOSED_CAMPAIGN or row["cancel_requested"]:
                    raise Conflict(f"campaign {campaign_id!r} is {row['status']}: nothing can be added")
                start = await conn.fetchval(
                    f"SELECT COALESCE(max(seq), 0) + 1 FROM {self.recipients} WHERE campaign_id = $1",
                    campaign_id,
                )
                stored = await self._insert(conn, campaign_id, recipients, start)
        return stored, dict(row)

    async def _insert(
        self, conn: asyncpg.Connection, campaign_id: str, recipients: builtins.list[Recipient], start: int
    ) -> set[str]:
        """One statement for all of them (10,000 rows in well under a second)."""
        if not recipients:
            return set()
        rows = await conn.fetch(
            f"""INSERT INTO {self.recipients} (campaign_id, recipient_id, seq, phone, variables, metadata)
                SELECT $1, r.id, r.seq, r.phone, r.variables::jsonb, r.metadata::jsonb
                FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
                    AS r(id, seq, phone, variables, metadata)
                ON CONFLICT DO NOTHING RETURNING recipient_id""",
            campaign_id,
            [r.recipient_id for r in recipients],
            list(range(start, start + len(recipients))),
            [r.phone for r in recipients],
            [json.dumps(r.variables) for r in recipients],
            [json.dumps(r.metadata) for r in recipients],
        )
        return {r["recipient_id"] for r in rows}

    # Reading ------------------------------------------------------------------------------------

    async def get(self, campaign_id: str) -> dict[str, Any] | None:
        with pg_errors():
            row = await self.pool.fetchrow(
                f"SELECT {_CAMPAIGN} FROM {self.campaigns} WHERE campaign_id = $1", campaign_id
            )
        return dict(row) if row else None

    async def require(self, campaign_id: str) -> dict[str, Any]:
        row = await self.get(campaign_id)
        if row is None:
            raise NotFound(f"no campaign {campaign_id!r}")
        return row

    async def list(
        self, status: CampaignStatus | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """Newest first; pass the returned cursor back for the next page (None: no more)."""
        filters = [("status = {}", status.value)] if status is not None else []
        select = f"SELECT {_CAMPAIGN} FROM {self.campaigns}"
        sql, params = newest_first(select, "campaign_id", str, filters, limit, cursor)
        with pg_errors():
            rows = [dict(r) for r in await self.pool.fetch(sql, *params)]
        return one_page(rows, limit, lambda r: (r["created_at"], r["campaign_id"]))

    async def counts(self, campaign_id: str) -> tuple[dict[str, int], dict[str, int], int]:
        """Recipients by status, by outcome, and in all."""
        with pg_errors():
            rows = await self.pool.fetch(
                f"""SELECT status, outcome, count(*) AS n FROM {self.recipients}
                    WHERE campaign_id = $1 GROUP BY status, outcome""",
                campaign_id,
            )
        counts = {s.value: 0 for s in RecipientStatus}
        outcomes: dict[str, int] = {}
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + row["n"]
            if row["outcome"]:
                outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + row["n"]
        return counts, outcomes, sum(counts.values())

    async def recipients_page(
        self,
        campaign_id: str,
        status: RecipientStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """In the order they were added; the cursor is the last row's position."""
        params: builtins.list[Any] = [campaign_id]
        where = ["campaign_id = $1"]
        if status is not None:
            params.append(status.value)
            where.append(f"status = ${len(params)}")
        if cursor is not None:
            params.append(read_cursor(cursor, int)[0])
            where.append(f"seq > ${len(params)}")
        params.append(limit + 1)
        sql = (
            f"SELECT {_RECIPIENT} FROM {self.recipients} WHERE {' AND '.join(where)}"
            f" ORDER BY seq LIMIT ${len(params)}"
        )
        with pg_errors():
            rows = [dict(r) for r in await self.pool.fetch(sql, *params)]
        page, next_cursor = one_page(rows, limit, lambda r: (r["seq"],))
        return [to_json(r) for r in page], next_cursor

    async def report_rows(self, campaign_id: str, batch: int = 500) -> AsyncIterator[dict[str, Any]]:
        """Every recipient in order, read `batch` rows at a time: a report of 10,000 rows holds
        one batch in memory, and no connection is kept while the caller writes them out."""
        after = 0
        while True:
            with pg_errors():
                rows = await self.pool.fetch(
                    f"""SELECT {_RECIPIENT} FROM {self.recipients}
                        WHERE campaign_id = $1 AND seq > $2 ORDER BY seq LIMIT $3""",
                    campaign_id,
                    after,
                    batch,
                )
            for row in rows:
                yield dict(row)
            if len(rows) < batch:
                return
            after = rows[-1]["seq"]

    # The workflow's writes ---------------------------------------------------------------------------

    async def next_pending(
        self, campaign_id: str, limit: int, skip: builtins.list[str] | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The first `limit` recipients whose call has not started and whose number has no other
        call in flight (a person's, another campaign's, another recipient's with the same number:
        they wait their turn), in the order they were added; `skip`: call ids started already
        (their recipient stays pending until the call's first status). A recipient linked to a
        call that was never started (the start was cut short) comes back, and its call is
        started then."""
        with pg_errors():
            rows = await self.pool.fetch(
                f"""SELECT recipient_id, seq, phone, variables, metadata, round FROM {self.recipients} r
                    WHERE {_not_started("$3")} AND NOT {self._number_busy}
                    ORDER BY r.seq LIMIT $2""",
                campaign_id,
                limit,
                skip or [],
            )
        return [dict(r) for r in rows]

    async def hold_waiting(self, campaign_id: str, skip: builtins.list[str], reason: str) -> int:
        """Note `reason` on the pending recipients (none of `skip`'s calls) whose number has another
        call in flight; answer how many pending recipients are left besides `skip`'s, held or not
        (0: none is left to start)."""
        with pg_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    f"""UPDATE {self.recipients} r SET reason = $3, updated_at = now()
                        WHERE {_not_started("$2")} AND r.reason IS DISTINCT FROM $3 AND {self._number_busy}""",
                    campaign_id,
                    skip,
                    reason,
                )
                left: int = await conn.fetchval(
                    f"SELECT count(*) FROM {self.recipients} r WHERE {_not_started('$2')}",
                    campaign_id,
                    skip,
                )
        return left

    @property
    def _number_busy(self) -> str:
        """SQL: recipient `r`'s number has a call in flight other than its own."""
        return (
            f"EXISTS (SELECT 1 FROM {self.calls} c WHERE c.phone = r.phone AND c.{IN_FLIGHT}"
            " AND c.call_id IS DISTINCT FROM r.call_id)"
        )

    async def link_call(
        self,
        campaign_id: str,
        recipient_id: str,
        call_id: str | None,
        status: RecipientStatus,
        reason: str | None = None,
    ) -> None:
        """The pending recipient's call, about to start (status still `pending`: the call's first
        status change moves it; a note on why it waited is cleared), or why it gets none (`failed`)."""
        with pg_errors():
            await self.pool.execute(
                f"""UPDATE {self.recipients} SET call_id = $3, status = $4, reason = $5, updated_at = now()
                    WHERE campaign_id = $1 AND recipient_id = $2 AND status = 'pending'""",
                campaign_id,
                recipient_id,
                call_id,
                status.value,
                reason,
            )

    async def record_call(self, rec: CallRecord) -> None:
        """A campaign call's status change, on its recipient (the call's own `call.record`)."""
        with pg_errors():
            await self.pool.execute(
                f"""UPDATE {self.recipients} AS r SET status = {_KEEP_EXPIRED},
                        attempts = r.attempts_before + $3,
                        outcome = COALESCE($4, r.outcome), summary = COALESCE($5, r.summary), reason = $7,
                        last_attempt_at = CASE WHEN $2 = 'dialing' THEN now() ELSE r.last_attempt_at END,
                        updated_at = now()
                    WHERE r.call_id = $1 AND r.campaign_id = $6""",
                rec.call_id,
                rec.status.value,
                rec.attempt,
                rec.analysis_outcome,
                rec.summary,
                rec.campaign_id,
                rec.reason,
            )

    async def stop_pending(self, campaign_id: str, status: RecipientStatus) -> int:
        """End every recipient whose call has not started as `status` (cancelled, expired)."""
        with pg_errors():
            done = await self.pool.execute(
                f"""UPDATE {self.recipients} SET status = $2, reason = $3, updated_at = now()
                    WHERE campaign_id = $1 AND status = 'pending'""",
                campaign_id,
                status.value,
                _STOPPED.get(status),
            )
        return int(done.split()[-1])

    async def expire_calls(self, campaign_id: str, call_ids: builtins.list[str]) -> None:
        """Recipients whose calls are being stopped because end_at came: `expired`, which the
        calls' own `cancelled` then does not overwrite."""
        with pg_errors():
            await self.pool.execute(
                f"""UPDATE {self.recipients} SET status = 'expired', updated_at = now()
                    WHERE campaign_id = $1 AND call_id = ANY($2) AND status IN ('scheduled', 'queued')""",
                campaign_id,
                call_ids,
            )

    async def set_status(
        self, campaign_id: str, status: CampaignStatus, cancel_requested: bool = False
    ) -> None:
        with pg_errors():
            await self.pool.execute(
                f"""UPDATE {self.campaigns} SET status = $2, cancel_requested = $3, updated_at = now(),
                        started_at = CASE WHEN $2 = 'running' THEN COALESCE(started_at, now())
                                          ELSE started_at END,
                        finished_at = CASE WHEN $2 IN ('finished', 'cancelled') THEN now() ELSE NULL END
                    WHERE campaign_id = $1""",
                campaign_id,
                status.value,
                cancel_requested,
            )

    async def finish(self, campaign_id: str) -> bool:
        """Mark the campaign finished, unless a recipient is still pending (one was appended)."""
        with pg_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    f"SELECT 1 FROM {self.campaigns} WHERE campaign_id = $1 FOR UPDATE", campaign_id
                )
                pending = await conn.fetchval(
                    f"SELECT EXISTS (SELECT 1 FROM {self.recipients} WHERE campaign_id = $1 AND status = 'pending')",
                    campaign_id,
                )
                if pending:
                    return False
                await conn.execute(
                    f"""UPDATE {self.campaigns} SET status = 'finished', finished_at = now(), updated_at = now()
                        WHERE campaign_id = $1""",
                    campaign_id,
                )
        return True

    async def retry(
        self, campaign_id: str, statuses: builtins.list[str], outcomes: builtins.list[str]
    ) -> int:
        """Make the recipients that ended with one of `statuses` or `outcomes` pending again, for a
        new call each (their attempts so far are kept in the count); the campaign must be finished."""
        with pg_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    f"SELECT status FROM {self.campaigns} WHERE campaign_id = $1 FOR UPDATE", campaign_id
                )
                if row is None:
                    raise NotFound(f"no campaign {campaign_id!r}")
                if row["status"] != CampaignStatus.FINISHED.value:
                    raise Conflict(
                        f"campaign {campaign_id!r} is {row['status']}: only a finished one is retried"
                    )
                done = await conn.execute(
                    f"""UPDATE {self.recipients} SET status = 'pending', round = round + 1, call_id = NULL,
                            outcome = NULL, summary = NULL, reason = NULL, attempts_before = attempts, updated_at = now()
                        WHERE campaign_id = $1 AND status = ANY($4::text[])
                          AND (status = ANY($2::text[]) OR outcome = ANY($3::text[]))""",
                    campaign_id,
                    statuses,
                    outcomes,
                    _FINAL,
                )
                count = int(done.split()[-1])
                if count:
                    await conn.execute(
                        f"""UPDATE {self.campaigns} SET status = 'running', finished_at = NULL,
                                updated_at = now() WHERE campaign_id = $1""",
                        campaign_id,
                    )
        return count
