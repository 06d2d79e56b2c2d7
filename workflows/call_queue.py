"""`CallQueue`: the one semaphore of all an integration's calls, id `{integration}:call-queue`.

    signal acquire(SlotRequest)      → signal slot_granted(SlotGrant) to the holder, when its turn comes
    signal release(SlotRelease)      # the attempt ended (or gave up waiting)
    signal campaign_gate(CampaignGate)   # pause / resume a campaign's waiting calls
    query snapshot() -> QueueState   # holders, waiters, paused campaigns, whose turn was last

Workflows reach it through `workflows.slots` (`Slots.hold`, `gate_campaign`); `control` queries it.

An `OutboundCall` holds a slot around each attempt: it signals `acquire`, waits for
`slot_granted`, and signals `release` when the attempt ends, however it ends. At most
`call_handling.concurrency_limit` attempts hold a slot at once, whichever workers or API replicas
their calls run on, and whatever they are: a person's single call, a retry, a campaign's
recipient. Whom the free slots go to is `happ_integ.calls.queue_order`'s pure decision: calls a
person asked for before retries before a campaign's fresh recipients; within a priority the
campaigns take turns (`last_campaign` remembers whose was last); first come, first served within
a campaign; a campaign never holds more than its `share` and gets nothing while paused, and a
waiter held back so blocks nobody behind it. Calls with the defaults (a person's, no campaign)
are served first come, first served, as before campaigns, so running queues replay unchanged.
`campaign_gate` pauses or resumes a campaign: its waiters stay queued, the slots it holds stay
held.

The limit is read again before slots are handed out (a change applies to the next acquisition). A
holder that stopped without releasing (terminated, timed out) is found every 30 seconds and its
slot reclaimed. The history stays small: the queue continues as new, carrying its state, whenever
Temporal suggests it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.calls import CallActivities
    from happ_integ.calls.contracts import (
        CampaignGate,
        QueueRef,
        QueueState,
        SlotGrant,
        SlotRelease,
        SlotRequest,
        WorkflowIds,
    )
    from happ_integ.calls.queue_order import any_grantable, pick_grants

from workflows import timers
from workflows.history import continue_as_new_due

SLOT_GRANTED = "slot_granted"
RECLAIM_EVERY = timedelta(seconds=30)
CAPACITY_FRESH_FOR = timedelta(seconds=5)
_QUICK = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10))
# Runs from before it kept the first way: they forgot requests that came while slots were being
# handed out, until the next reclaim check.
SERVE_LATE_REQUESTS_PATCH = "queue-serves-requests-that-come-while-granting"


# The framework's own code, no integration's: it runs outside the sandbox, which would rebuild this
# module for every run and wrap every payload it converts, work repeated on every workflow task of
# every call for code that needs no isolation. Its determinism is held by the replay tests over
# recorded histories (tests/workflows/test_call_replay.py).
@workflow.defn(sandboxed=False)
class CallQueue:
    @workflow.init
    def __init__(self, state: QueueState) -> None:
        self._state = state
        self._changed = True
        self._capacity_read_at: datetime | None = None
        self._reclaim_timer: timers.Timer | None = None

    @workflow.run
    async def run(self, state: QueueState) -> None:
        # One reclaim timer at a time, never cancelled: a signal does not restart it (that would be
        # two more history events per signal).
        while True:
            if workflow.patched(SERVE_LATE_REQUESTS_PATCH):
                # Cleared before granting: a request that comes while the grants are being
                # signalled (they take a workflow task each to confirm) wakes the next round.
                self._changed = False
                await self._grant()
            else:
                await self._grant()
                self._changed = False
            if self._reclaim_timer is not None and self._reclaim_timer.done():
                self._reclaim_timer = None
                await self._reclaim()
                continue
            if self._reclaim_timer is None and (self._state.holders or self._state.waiters):
                self._reclaim_timer = timers.start(RECLAIM_EVERY, "reclaim check")
            await workflow.wait_condition(
                lambda: self._changed or self._should_continue_as_new() or self._reclaim_due()
            )
            if self._should_continue_as_new() and workflow.all_handlers_finished():
                workflow.continue_as_new(self._state)

    @workflow.signal
    def acquire(self, request: SlotRequest) -> None:
        state = self._state
        if state.holders.get(request.holder) == request.attempt or request in state.waiters:
            return  # a repeated request changes nothing
        state.waiters.append(request)
        self._changed = True

    @workflow.signal
    def release(self, release: SlotRelease) -> None:
        state = self._state
        if state.holders.get(release.holder) == release.attempt:
            self._drop_holder(release.holder)
        state.waiters = [
            w for w in state.waiters if not (w.holder == release.holder and w.attempt == release.attempt)
        ]
        self._changed = True

    @workflow.signal
    def campaign_gate(self, gate: CampaignGate) -> None:
        """Pause a campaign (its waiters stay queued, get no slot and block nobody) or resume it."""
        paused = self._state.paused_campaigns
        if gate.paused and gate.campaign_id not in paused:
            paused.append(gate.campaign_id)
        elif not gate.paused and gate.campaign_id in paused:
            paused.remove(gate.campaign_id)
            self._changed = True  # its waiters may take the free slots now

    @workflow.query
    def snapshot(self) -> QueueState:
        return self._state

    async def _grant(self) -> None:
        state = self._state
        # With the defaults (no campaign), any waiter is grantable: the check of the runs before.
        if len(state.holders) >= state.capacity or not any_grantable(state):
            return
        now = workflow.now()
        if self._capacity_read_at is None or now - self._capacity_read_at > CAPACITY_FRESH_FOR:
            state.capacity = await workflow.execute_activity_method(
                CallActivities.queue_capacity,
                QueueRef(integration=state.integration),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=_QUICK,
            )
            self._capacity_read_at = workflow.now()
        granted = self._hand_out()
        results = await asyncio.gather(
            *(
                workflow.get_external_workflow_handle(r.holder).signal(
                    SLOT_GRANTED, SlotGrant(attempt=r.attempt)
                )
                for r in granted
            ),
            return_exceptions=True,
        )
        for request, result in zip(granted, results, strict=True):
            if isinstance(result, FailureError):
                # The call is gone (it could not be signalled): its slot is free again.
                self._drop_holder(request.holder)
                self._changed = True
            elif isinstance(result, BaseException):
                raise result
            else:
                state.granted_total += 1

    def _hand_out(self) -> list[SlotRequest]:
        """Make holders of the waiters `queue_order` picks for the free slots, in its order."""
        state = self._state
        picked = pick_grants(state, state.capacity)
        chosen = {id(r) for r in picked.requests}  # the very waiter objects, one each
        state.waiters = [w for w in state.waiters if id(w) not in chosen]
        for request in picked.requests:
            state.holders[request.holder] = request.attempt
            if request.campaign_id is None:
                state.holder_campaigns.pop(request.holder, None)
            else:
                state.holder_campaigns[request.holder] = request.campaign_id
        state.last_campaign = picked.last_campaign
        return picked.requests

    def _drop_holder(self, holder: str) -> None:
        self._state.holders.pop(holder, None)
        self._state.holder_campaigns.pop(holder, None)

    async def _reclaim(self) -> None:
        state = self._state
        ids = sorted(set(state.holders) | {w.holder for w in state.waiters})
        if not ids:
            return
        closed = set(
            await workflow.execute_activity_method(
                CallActivities.closed_workflows,
                WorkflowIds(ids=ids),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_QUICK,
            )
        )
        if closed:
            state.holders = {k: v for k, v in state.holders.items() if k not in closed}
            state.holder_campaigns = {k: v for k, v in state.holder_campaigns.items() if k in state.holders}
            state.waiters = [w for w in state.waiters if w.holder not in closed]
            self._changed = True

    def _reclaim_due(self) -> bool:
        return self._reclaim_timer is not None and self._reclaim_timer.done()

    def _should_continue_as_new(self) -> bool:
        return continue_as_new_due(self._state.continue_after_events)
