"""`DocumentRetention`: the daily purge of an integration's call documents (transcripts, audio,
unmatched webhooks) older than its `retention` config; one activity, started by the Schedule
`{integration}:retention:documents` that `setup` creates for every integration with a call flow.
Workflow id `{integration}:retention:documents-<fire time>`; search attribute `Integration`.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from happ_integ.stores.retention import RetentionReport, RetentionRun


# Framework code like the call workflows: unsandboxed, one activity and nothing else to decide.
@workflow.defn(sandboxed=False)
class DocumentRetention:
    @workflow.run
    async def run(self, run: RetentionRun) -> RetentionReport:
        return await workflow.execute_activity(
            "retention.purge_documents",
            run,
            result_type=RetentionReport,
            summary="retention.purge_documents",
            start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=10),
        )
