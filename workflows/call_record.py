"""Every status change of a call, written three ways at once: the `CallStatus` and `CallAttempt`
search attributes, the call's metrics, and its row in `{integration}_calls` (a `call.record`
local activity whose summary is the status).

    record = CallRecorder(request, state)        # in the workflow's __init__
    record.started()                             # the call's metrics begin
    await record.status(CallStatus.SCHEDULED, next_attempt_at=opens)
    await record.finish(CallStatus.EXHAUSTED, "no answered call in 3 attempts")
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.calls import CallActivities
    from happ_integ.calls.contracts import CallRecord, CallRequest
    from happ_integ.calls.models import FINAL_STATUSES, CallState, CallStatus, Outcome
    from happ_integ.campaigns.models import CallProgress
    from happ_integ.temporal import CALL_ATTEMPT_KEY, CALL_STATUS_KEY, campaign_workflow_id

from workflows import call_metrics

# A campaign counts its calls that want a slot: it hears when one queues, waits (for the calling
# window or a retry), waits for its post-call, or ends. Dialing, talking, analysing change nothing.
_CAMPAIGN_FOLLOWS = frozenset(
    {CallStatus.QUEUED, CallStatus.SCHEDULED, CallStatus.WAITING_POSTCALL, *FINAL_STATUSES}
)
CAMPAIGN_PROGRESS = "call_progress"
# Database writes retry until PostgreSQL answers again: a status change is never dropped.
STORE = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


class CallRecorder:
    def __init__(self, request: CallRequest, state: CallState) -> None:
        self._request = request
        self._state = state
        self._metrics = call_metrics.CallMetrics(request.integration)
        # The row's variables are written once the lookup ran (before, what is there is kept).
        self.looked_up = False

    def started(self) -> None:
        self._metrics.started()

    def retried(self, outcome: Outcome | str | None) -> None:
        self._metrics.retried(outcome)

    async def status(
        self, status: CallStatus, *, next_attempt_at: datetime | None = None, held_by_cap: bool = False
    ) -> None:
        """`status` written; `held_by_cap`: a scheduled call waits for a contact_policy cap."""
        state = self._state
        self._metrics.status_changed(state.status, status)
        if self._request.campaign_id is not None and status != state.status:
            self._metrics.recipient_entered(status.value)
        state.status = status
        state.next_attempt_at = next_attempt_at
        workflow.upsert_search_attributes(
            [CALL_STATUS_KEY.value_set(status.value), CALL_ATTEMPT_KEY.value_set(state.attempt)]
        )
        attempt = state.attempts[-1] if state.attempts else None
        await workflow.execute_local_activity_method(
            CallActivities.record,
            CallRecord(
                integration=self._request.integration,
                call_id=self._request.call_id,
                status=status,
                attempt=state.attempt,
                next_attempt_at=next_attempt_at,
                provider_call_id=state.provider_call_id,
                conversation_id=state.conversation_id,
                outcome=attempt.outcome if attempt else None,
                reason=state.reason,
                variables=state.variables if self.looked_up else None,
                result=state.result,
                campaign_id=self._request.campaign_id,
                analysis_outcome=state.analysis.outcome if state.analysis else None,
                summary=state.analysis.summary if state.analysis else None,
            ),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=STORE,
            summary=status.value,
        )
        if self._request.campaign_id is not None and status in _CAMPAIGN_FOLLOWS:
            await self._tell_campaign(self._request.campaign_id, status, held_by_cap)

    async def _tell_campaign(self, campaign_id: str, status: CallStatus, held_by_cap: bool) -> None:
        """The `call_progress` signal to the call's `Campaign`, which starts the next recipients'
        calls as its own leave the queue."""
        campaign = workflow.get_external_workflow_handle(
            campaign_workflow_id(self._request.integration, campaign_id)
        )
        try:
            await campaign.signal(
                CAMPAIGN_PROGRESS,
                CallProgress(
                    call_id=self._request.call_id,
                    status=status,
                    attempt=self._state.attempt,
                    held_by_cap=held_by_cap,
                ),
            )
        except FailureError:
            pass  # the campaign has ended (cancelled, or terminated by an operator): nobody to tell

    async def finish(self, status: CallStatus, reason: str | None) -> None:
        """A final status, and why (None: the reason already noted, if any)."""
        if reason:
            self._state.reason = reason
        await self.status(status)
        self._metrics.ended(status, self._state.attempt)
