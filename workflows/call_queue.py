"""`CallQueue`: the semaphore of one integration's calls, id `{integration}:call-queue`.

An `OutboundCall` holds a slot around each attempt through its client, `workflows.slots`: it
signals `acquire`, waits for `slot_granted`, and signals `release` when the attempt ends, however
it ends. At most `call_handling.concurrency_limit` attempts hold a slot at once, whichever
workers or API replicas their calls run on, and waiting calls are served first come, first served.
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
    from activities.calls import CallActivities, QueueRef, WorkflowIds
    from happ_integ.calls.models import QueueState, SlotGrant, SlotRelease, SlotRequest

from workflows import timers

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
            del state.holders[release.holder]
        state.waiters = [
            w for w in state.waiters if not (w.holder == release.holder and w.attempt == release.attempt)
        ]
        self._changed = True

    @workflow.query
    def snapshot(self) -> QueueState:
        return self._state

    async def _grant(self) -> None:
        state = self._state
        if not state.waiters or len(state.holders) >= state.capacity:
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
        granted: list[SlotRequest] = []
        while state.waiters and len(state.holders) < state.capacity:
            request = state.waiters.pop(0)
            state.holders[request.holder] = request.attempt
            granted.append(request)
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
                state.holders.pop(request.holder, None)
                self._changed = True
            elif isinstance(result, BaseException):
                raise result
            else:
                state.granted_total += 1

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
            state.waiters = [w for w in state.waiters if w.holder not in closed]
            self._changed = True

    def _reclaim_due(self) -> bool:
        return self._reclaim_timer is not None and self._reclaim_timer.done()

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        limit = self._state.continue_after_events
        if limit is not None:
            return info.get_current_history_length() > limit
        return info.is_continue_as_new_suggested()
