"""`Campaign`: one campaign's recipients called as one thing, id `{integration}:campaign:{campaign_id}`.

The recipients are in `{integration}_campaign_recipients`, never in history: the workflow asks
`campaign.start_calls` for the next few pending ones whenever fewer than two shares of its calls
(`2 × max_concurrency`) want or hold a slot, so a campaign of 10,000 has a few dozen call
workflows running at a time, not 10,000. Each recipient's call is an `OutboundCall`
(`CampaignId` search attribute) that tells the campaign, by the `call_progress` signal, when it
queues, waits for a retry, waits for its post-call and ends. The integration's `CallQueue`
grants the slots: the campaign's share, its turn among campaigns, nothing while it is paused.

Updates: `pause` (nothing new is dialled: the queue holds the campaign's calls back and no new
call starts; calls on the line finish), `resume`, `cancel` (no new dial; every call not yet
dialled ends `cancelled`, calls on the line finish with their post-call; `cancelled` once they
have). Signal `recipients_added` (the gateway appended some). Before `start_at` the campaign is
`scheduled`; at `end_at` its pending recipients and calls not yet dialled end `expired`. It
finishes when every recipient reached a final status; `retry` (the gateway) starts a new run.
The history stays small: the run continues as new, carrying only the calls in flight.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.calls import CallActivities
    from activities.campaigns import CampaignActivities
    from happ_integ.calls.clock import next_window_start
    from happ_integ.calls.config import CallHandling
    from happ_integ.calls.contracts import WorkflowIds
    from happ_integ.calls.models import FINAL_STATUSES
    from happ_integ.campaigns.models import (
        CallProgress,
        CampaignAnswer,
        CampaignRef,
        CampaignRun,
        CampaignStatus,
        CampaignStatusChange,
        LiveCall,
        RecipientStatus,
        StartCalls,
        StopCalls,
    )
    from happ_integ.temporal import call_workflow_id

from workflows import slots, timers
from workflows.call_metrics import CallMetrics
from workflows.history import continue_as_new_due

# Database writes and starts retry until PostgreSQL and Temporal answer again.
_STORE = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# A started call counts against the campaign's window until it waits for a retry, its post-call
# or ends: these want or hold a slot.
# How often the calls in flight are checked for one that closed without telling the campaign.
_RECONCILE_EVERY = timedelta(minutes=10)
_WANTS_A_SLOT = frozenset(
    {RecipientStatus.PENDING, RecipientStatus.QUEUED, RecipientStatus.DIALING, RecipientStatus.IN_PROGRESS}
)


@workflow.defn(sandboxed=False)
class Campaign:
    @workflow.init
    def __init__(self, run: CampaignRun) -> None:
        self._run = run
        self._ref = CampaignRef(integration=run.integration, campaign_id=run.campaign_id)
        self._handling = CallHandling()
        self._ended: CampaignStatus | None = None  # finished or cancelled
        # One status write at a time, each writing the status as it is when it runs: a pause
        # answered while the run writes `running` never ends up shown as `running`.
        self._writing = asyncio.Lock()
        self._more = True  # pending recipients may be left
        self._changed = True
        # Progress of calls the running `start_calls` started but has not reported yet.
        self._early: dict[str, CallProgress] = {}

    @workflow.run
    async def run(self, run: CampaignRun) -> CampaignStatus:
        base = await workflow.execute_local_activity_method(
            CampaignActivities.begin,
            self._ref,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_STORE,
        )
        self._handling = run.settings.handling(base)
        await self._write_status()
        await self._until_start_at()
        while True:
            if run.cancel_requested:
                await self._stop(RecipientStatus.CANCELLED)
                return await self._end(CampaignStatus.CANCELLED)
            if self._past_end():
                await self._stop(RecipientStatus.EXPIRED)
                if await self._finish():
                    return await self._end(CampaignStatus.FINISHED)
                continue  # recipients appended while stopping: they expire too
            if await self._start_more():
                continue
            if not self._more and not run.live:
                if await self._finish():
                    return await self._end(CampaignStatus.FINISHED)
                self._more = True  # a recipient was appended meanwhile
                continue
            if self._should_continue_as_new() and workflow.all_handlers_finished():
                workflow.continue_as_new(self._run)
            self._changed = False
            if not await timers.wait(
                lambda: self._changed or self._should_continue_as_new(), self._idle(), "waiting for its calls"
            ):
                await self._reconcile()

    # Starting calls ---------------------------------------------------------------------------

    async def _until_start_at(self) -> None:
        start_at = self._run.settings.start_at
        if start_at is not None and start_at > workflow.now() and not self._run.cancel_requested:
            await timers.wait(lambda: self._run.cancel_requested, start_at - workflow.now(), "start_at")
            await self._write_status()

    async def _start_more(self) -> bool:
        """Start calls for the next pending recipients while the window has room: True when some
        were started (or the calling window was waited for)."""
        run = self._run
        room = self._window() - self._wanting_a_slot()
        if run.paused or run.cancel_requested or not self._more or room <= 0:
            return False
        opens = next_window_start(workflow.now(), self._handling.calling_hours)
        if opens > workflow.now():
            # Outside calling hours no call is started: each would only wait for the window itself.
            end_at = run.settings.end_at
            until = min(opens, end_at) if end_at is not None else opens
            await timers.wait(
                lambda: run.cancel_requested or run.paused, until - workflow.now(), "calling hours"
            )
            return True
        result = await workflow.execute_activity_method(
            CampaignActivities.start_calls,
            StartCalls(
                integration=run.integration,
                campaign_id=run.campaign_id,
                limit=room,
                settings=run.settings,
                started=sorted(c for c, call in run.live.items() if call.status == RecipientStatus.PENDING),
            ),
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=20),
            retry_policy=_STORE,
        )
        # A recipient stays pending until its call writes its first status, so a call started
        # before comes back (attached to): only the calls not followed yet are new. Asking again
        # before such a call's first status arrives would get it back again, at once.
        again = [c for c in result.started if c in run.live]
        fresh = {c: r for c, r in result.started.items() if c not in run.live}
        for call_id, recipient_id in fresh.items():
            run.live[call_id] = LiveCall(recipient_id=recipient_id)
            early = self._early.pop(call_id, None)
            if early is not None:
                self._progress(early)
        self._more = result.more
        moved = any(c not in run.live or run.live[c].status != RecipientStatus.PENDING for c in again)
        return bool(fresh) or moved

    def _window(self) -> int:
        """Calls that may want or hold a slot at once: two shares, so that the next ones are
        already queued when a slot frees."""
        share = self._run.settings.max_concurrency or self._handling.concurrency_limit
        return 2 * share

    def _wanting_a_slot(self) -> int:
        return sum(
            1
            for call in self._run.live.values()
            if call.status in _WANTS_A_SLOT
            # Waiting for its calling window it still wants a slot soon; held back by a contact
            # cap (a day, perhaps) it does not, and other recipients go ahead meanwhile.
            or (call.status == RecipientStatus.SCHEDULED and call.attempt == 0 and not call.held_by_cap)
        )

    # Stopping ---------------------------------------------------------------------------------

    async def _stop(self, why: RecipientStatus) -> None:
        """No new dial: the queue holds the campaign back, pending recipients end `why`, and every
        call in flight gets no further attempt (one on the line finishes, post-call included).
        Returns once every call has ended."""
        run = self._run
        await slots.gate_campaign(run.integration, run.campaign_id, paused=True)
        stopped = await workflow.execute_activity_method(
            CampaignActivities.stop_calls,
            StopCalls(
                integration=run.integration,
                campaign_id=run.campaign_id,
                call_ids=sorted(run.live),
                expired=why == RecipientStatus.EXPIRED,
            ),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=_STORE,
        )
        if stopped:
            CallMetrics(run.integration).recipient_entered(why.value, stopped)
        self._more = False
        while run.live:
            if not await timers.wait(lambda: not run.live, _RECONCILE_EVERY, "calls finishing"):
                await self._reconcile()

    async def _reconcile(self) -> None:
        """Forget calls whose workflow closed without telling (terminated by an operator)."""
        if not self._run.live:
            return
        closed = await workflow.execute_activity_method(
            CallActivities.closed_workflows,
            WorkflowIds(ids=[call_workflow_id(self._run.integration, c) for c in sorted(self._run.live)]),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_STORE,
        )
        for workflow_id in closed:
            self._run.live.pop(workflow_id.split(":call:", 1)[-1], None)

    def _past_end(self) -> bool:
        end_at = self._run.settings.end_at
        return end_at is not None and workflow.now() >= end_at

    def _idle(self) -> timedelta:
        """How long to wait for a change: until end_at, and never past the next check that no
        call closed without telling."""
        end_at = self._run.settings.end_at
        if end_at is not None and end_at > workflow.now():
            return min(end_at - workflow.now(), _RECONCILE_EVERY)
        return _RECONCILE_EVERY

    async def _finish(self) -> bool:
        """`finished` in the table, unless a recipient was appended meanwhile (False)."""
        async with self._writing:
            finished = await workflow.execute_activity_method(
                CampaignActivities.finish,
                self._ref,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_STORE,
            )
            if finished:
                self._ended = CampaignStatus.FINISHED
            return finished

    async def _end(self, status: CampaignStatus) -> CampaignStatus:
        """The run's last steps: the status written, the queue told, the updates answered."""
        self._ended = status
        await self._write_status()
        await slots.gate_campaign(self._run.integration, self._run.campaign_id, paused=False)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return status

    def status(self) -> CampaignStatus:
        """The status as the operator sees it."""
        if self._ended is not None:
            return self._ended
        if self._run.paused:
            return CampaignStatus.PAUSED
        start_at = self._run.settings.start_at
        if start_at is not None and start_at > workflow.now():
            return CampaignStatus.SCHEDULED
        return CampaignStatus.RUNNING

    async def _write_status(self) -> None:
        async with self._writing:
            await workflow.execute_activity_method(
                CampaignActivities.set_status,
                CampaignStatusChange(
                    integration=self._run.integration,
                    campaign_id=self._run.campaign_id,
                    status=self.status(),
                    cancel_requested=self._run.cancel_requested,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_STORE,
            )

    def _should_continue_as_new(self) -> bool:
        return continue_as_new_due(self._run.continue_after_events)

    # Signals, updates, query --------------------------------------------------------------------

    @workflow.signal
    def call_progress(self, progress: CallProgress) -> None:
        if progress.call_id not in self._run.live:
            self._early[progress.call_id] = progress
            return
        self._progress(progress)

    def _progress(self, progress: CallProgress) -> None:
        if progress.status in FINAL_STATUSES:
            self._run.live.pop(progress.call_id, None)
        else:
            call = self._run.live[progress.call_id]
            call.status = RecipientStatus(progress.status.value)
            call.attempt = progress.attempt
            call.held_by_cap = progress.held_by_cap
        self._changed = True

    @workflow.signal
    def recipients_added(self) -> None:
        self._more = True
        self._changed = True

    @workflow.update
    async def pause(self) -> CampaignAnswer:
        """Answered once the queue holds the campaign's calls back and `paused` is written."""
        if self._ended is None and not self._run.paused:
            self._run.paused = True
            self._changed = True
            await slots.gate_campaign(self._run.integration, self._run.campaign_id, paused=True)
            await self._write_status()
        return self._answer()

    @workflow.update
    async def resume(self) -> CampaignAnswer:
        if self._ended is None and self._run.paused and not self._run.cancel_requested:
            self._run.paused = False
            self._changed = True
            await slots.gate_campaign(self._run.integration, self._run.campaign_id, paused=False)
            await self._write_status()
        return self._answer()

    @workflow.update
    async def cancel(self) -> CampaignAnswer:
        """Answered once nothing new dials; the run then ends the calls not yet dialled."""
        if self._ended is None and not self._run.cancel_requested:
            self._run.cancel_requested = True
            self._changed = True
            await slots.gate_campaign(self._run.integration, self._run.campaign_id, paused=True)
            await self._write_status()
        return self._answer()

    @workflow.query
    def live_calls(self) -> dict[str, LiveCall]:
        return self._run.live

    def _answer(self) -> CampaignAnswer:
        return CampaignAnswer(
            campaign_id=self._run.campaign_id,
            status=self.status(),
            cancel_requested=self._run.cancel_requested,
        )
