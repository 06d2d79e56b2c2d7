"""A call's side of its integration's `CallQueue`: a slot held around one attempt.

    slots = Slots(request.integration)          # in the workflow's __init__: it takes `slot_granted`
    async with slots.hold(
        attempt,
        unless=lambda: state.cancel_requested,
        priority=SlotPriority.RETRY,            # default PERSON; CAMPAIGN for a fresh recipient
        campaign_id=campaign_id,                # default None: the call of no campaign
        share=max_concurrency,                  # the campaign's slots at most (None: any)
    ) as held:
        if held:
            ...                                 # dial; the slot goes back however this block ends

    await gate_campaign(integration, campaign_id, paused=True)   # from a Campaign workflow

The workflow that holds slots never sees the queue's signals: `hold` signals `acquire`, waits for
the queue's `slot_granted`, and signals `release` when the block ends (or at once, when `unless`
came true first: a grant crossing on the way is given back too). The request says where the call
stands in the queue's order (`happ_integ.calls.queue_order`): its `priority` (a person's call,
the default, before a retry before a campaign's fresh recipient), its campaign, whose calls take
turns with other campaigns', and the campaign's `share` (its max_concurrency: the slots its calls
hold at most). `gate_campaign` pauses or resumes all of a campaign's waiting calls at once. The
queue is started when it is not running (the integration's first call, or stopped by an
operator). It is a lock, not a lease: the queue reclaims the slot of a call that stopped without
releasing it (terminated, timed out).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.calls import CallActivities
    from happ_integ.calls.contracts import (
        CampaignGate,
        QueueRef,
        SlotGrant,
        SlotPriority,
        SlotRelease,
        SlotRequest,
    )
    from happ_integ.temporal import queue_workflow_id

from workflows.call_queue import SLOT_GRANTED, CallQueue

# Starting the queue retries until Temporal answers: a call never gives up on its slot.
_START = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


class Slots:
    """The slots of one call; create it in the workflow's `__init__` (it registers `slot_granted`)."""

    def __init__(self, integration: str) -> None:
        self._integration = integration
        self._granted: int | None = None  # the attempt the queue last granted a slot to
        workflow.set_signal_handler(SLOT_GRANTED, self._slot_granted)

    def _slot_granted(self, grant: SlotGrant) -> None:
        self._granted = grant.attempt

    @asynccontextmanager
    async def hold(
        self,
        attempt: int,
        *,
        unless: Callable[[], bool],
        priority: SlotPriority = SlotPriority.PERSON,
        campaign_id: str | None = None,
        share: int | None = None,
    ) -> AsyncIterator[bool]:
        """A slot for `attempt` while the block runs; False (and no slot) when `unless()` came true
        before the queue granted one. `priority`, `campaign_id` and `share` (the campaign's
        max_concurrency) place the request in the queue's order."""
        me = workflow.info().workflow_id
        request = SlotRequest(
            holder=me, attempt=attempt, priority=priority, campaign_id=campaign_id, share=share
        )
        await self._signal(CallQueue.acquire, request)
        await workflow.wait_condition(lambda: self._granted == attempt or unless())
        if self._granted != attempt:
            # Leave the queue (or give back a grant crossing on the way).
            await self._signal(CallQueue.release, SlotRelease(holder=me, attempt=attempt))
            yield False
            return
        try:
            yield True
        finally:
            # A run evicted from the worker's cache is torn down outside the workflow's event
            # loop, and this still runs: there is nothing to send then (the run goes on from its
            # history on its next task).
            if workflow.in_workflow():
                await self._signal(CallQueue.release, SlotRelease(holder=me, attempt=attempt))

    async def _signal(self, signal: Any, arg: Any) -> None:
        await signal_queue(self._integration, signal, arg)


async def gate_campaign(integration: str, campaign_id: str, paused: bool) -> None:
    """Pause (`paused`) or resume a campaign's calls in `integration`'s queue, from a workflow:
    paused, its waiting calls get no slot (and block no other call) until resumed; the slots its
    calls hold stay held. Repeating it changes nothing."""
    gate = CampaignGate(campaign_id=campaign_id, paused=paused)
    await signal_queue(integration, CallQueue.campaign_gate, gate)


async def signal_queue(integration: str, signal: Any, arg: Any) -> None:
    """Send `signal` with `arg` to `integration`'s queue, starting the queue when it is not running."""
    queue = workflow.get_external_workflow_handle(queue_workflow_id(integration))
    try:
        await queue.signal(signal, arg)
    except FailureError:
        # Not running yet (the integration's first call) or stopped by an operator: start it.
        await workflow.execute_activity_method(
            CallActivities.start_queue,
            QueueRef(integration=integration),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_START,
        )
        await queue.signal(signal, arg)
