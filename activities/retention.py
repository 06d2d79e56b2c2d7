"""`retention.purge_documents`: delete an integration's call documents older than its `retention` config,
and the record of dials (`happ_contact_attempts`) older than two days.

    report = await workflow.execute_activity("retention.purge_documents", RetentionRun(integration="sofa"), ...)

The config is read here, at each run, so `PUT /sofa/config/retention` takes effect at the next
one without a new `setup`. Deleting in batches, it heartbeats after each, so a long first purge
(a year of transcripts) is neither timed out nor started over by a retry: what went is gone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import activity

from happ_integ.durable import activity_failures
from happ_integ.ops import Resources
from happ_integ.stores.retention import CONFIG_KEY, Retention, RetentionReport, RetentionRun, purge_documents

ATTEMPTS_KEPT = timedelta(days=2)


class RetentionActivities:
    def __init__(self, resources: Resources) -> None:
        self._res = resources

    @activity.defn(name="retention.purge_documents")
    async def purge_documents(self, run: RetentionRun) -> RetentionReport:
        with activity_failures():
            # The record of dials that contact_policy's caps count: kept two days (they look back
            # one), whatever the documents' retention; each integration's run purges the shared table.
            attempts = await self._res.contact_attempts().purge(datetime.now(UTC) - ATTEMPTS_KEPT)
            retention = await self._res.config(run.integration).get(CONFIG_KEY, Retention) or Retention()
            days = retention.documents_days
            if days is None:  # kept forever, said out loud in the config
                return RetentionReport(
                    integration=run.integration, documents_days=None, contact_attempts_deleted=attempts
                )
            cutoff = datetime.now(UTC) - timedelta(days=days)
            deleted = await purge_documents(
                self._res.pool, run.integration, cutoff, on_batch=lambda n: activity.heartbeat(n)
            )
            return RetentionReport(
                integration=run.integration,
                documents_days=days,
                cutoff=cutoff,
                deleted=deleted,
                contact_attempts_deleted=attempts,
            )
