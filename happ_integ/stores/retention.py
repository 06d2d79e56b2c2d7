"""How long a call's documents (transcripts, audio, webhooks that matched no call) are kept, and the
purge that deletes older ones.

    retention = await resources.config("sofa").get("retention", Retention)   # {"documents_days": 90}
    deleted = await purge_documents(pool, "sofa", older_than=now - timedelta(days=90))

Every integration with a call flow has the `retention` config (`PUT /sofa/config/retention
{"documents_days": 30}`) and a Temporal Schedule, `sofa:retention:documents`, that runs
`DocumentRetention` once a day: documents older than `documents_days` are deleted, in batches.

The default is 90 days. A transcript has done its work within a day (the analysis, the CRM update,
the post-call read from ElevenLabs' API); what it is kept for afterwards is quality review and
disputes, for which a quarter is ample. It is a conversation with a private person, to be kept no
longer than needed: an operator who needs longer (a legal hold) sets it out loud, up to ten years,
or `null` to keep everything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from happ_integ.stores.db import quote_ident, table_name
from happ_integ.stores.migrations import Migration
from happ_integ.stores.schema import pg_errors

DEFAULT_DOCUMENTS_DAYS = 90
CONFIG_KEY = "retention"
# Runs daily at 03:17 UTC: quiet hours for Ukrainian clients, and not on the hour every cron uses.
CRON = "17 3 * * *"
BATCH = 1000

# The purge reads by age: an index keeps it from scanning every transcript each night.
RETENTION_MIGRATIONS = (
    Migration("happ_calls_documents_by_age", "CREATE INDEX ON {{call_documents}} (created_at)"),
)


class Retention(BaseModel):
    """The `retention` config of an integration with a call flow."""

    model_config = ConfigDict(extra="forbid")

    documents_days: int | None = Field(
        default=DEFAULT_DOCUMENTS_DAYS,
        ge=1,
        le=3650,
        description="days a transcript, an audio file or an unmatched webhook is kept; null keeps them forever",
    )


class RetentionRun(BaseModel):
    """What `DocumentRetention` starts with."""

    integration: str


class RetentionReport(BaseModel):
    """What a purge did: the cutoff it used (None when documents are kept forever) and how many went."""

    integration: str
    documents_days: int | None
    cutoff: datetime | None = None
    deleted: int = 0
    contact_attempts_deleted: int = Field(
        default=0, description="dials older than two days, which no contact_policy cap reads any more"
    )


def retention_schedule_id(integration: str) -> str:
    """`sofa:retention:documents`: no handler's schedule (`sofa:{handler}`) can have this id."""
    return f"{integration}:retention:documents"


async def purge_documents(
    pool: asyncpg.Pool,
    integration: str,
    older_than: datetime,
    *,
    batch: int = BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete the integration's documents created before `older_than`, `batch` rows per statement
    (short locks, a calls table that stays writable); return how many went. `on_batch(n)` is
    called after each batch (the activity heartbeats there)."""
    documents = quote_ident(table_name(integration, "call_documents"))
    sql = f"""
        WITH doomed AS (
            SELECT id FROM {documents} WHERE created_at < $1 ORDER BY created_at LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        DELETE FROM {documents} d USING doomed WHERE d.id = doomed.id
    """
    total = 0
    while True:
        with pg_errors():
            status = await pool.execute(sql, older_than, batch)
        count = int(status.rsplit(" ", 1)[-1])
        total += count
        if on_batch is not None:
            on_batch(total)
        if count < batch:
            return total
