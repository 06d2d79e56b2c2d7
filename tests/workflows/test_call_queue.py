"""`CallQueue` on the time-skipping test server: a slot per attempt, first come first served,
never more than the limit, reclaimed from a holder that died, and a history that stays small."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from happ_integ.calls.models import QueueState
from happ_integ.temporal import queue_workflow_id
from tests.workflows.fakes import CallScript, SlotHolder
from tests.workflows.harness import eventually, timer_story
from worker import workflow_runner
from workflows import CallQueue
from workflows.control import queue_state


@dataclass
class Queue:
    env: WorkflowEnvironment
    script: CallScript
    integration: str
    holders: list[WorkflowHandle[SlotHolder, None]]

    async def start(self, state: QueueState | None = None) -> None:
        await self.env.client.start_workflow(
            CallQueue.run,
            state or QueueState(integration=self.integration),
            id=queue_workflow_id(self.integration),
            task_queue=f"happ-{self.integration}",
        )

    async def hold(self) -> WorkflowHandle[SlotHolder, None]:
        """A new holder, once the queue has taken its request (so the order of requests is fixed)."""
        handle = await self.env.client.start_workflow(
            SlotHolder.run,
            self.integration,
            id=f"holder-{uuid.uuid4().hex[:8]}",
            task_queue=f"happ-{self.integration}",
        )
        self.holders.append(handle)
        await self.until(lambda s: handle.id in s.holders or any(w.holder == handle.id for w in s.waiters))
        return handle

    async def state(self) -> QueueState:
        return await queue_state(self.env.client, self.integration)

    async def until(self, test: Callable[[QueueState], bool], seconds: float = 10) -> QueueState:
        return await eventually(self.state, test, seconds, lambda s: f"the queue never got there: {s}")


@pytest.fixture
async def queue(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Queue]:
    env = time_skipping_env
    name = f"q{uuid.uuid4().hex[:10]}"
    script = CallScript(env.client, capacity=2)
    worker = Worker(
        env.client,
        task_queue=f"happ-{name}",
        workflows=[CallQueue, SlotHolder],
        activities=script.activities(),
        workflow_runner=workflow_runner(),
    )
    q = Queue(env, script, name, [])
    async with worker:
        yield q
        for workflow_id in [*(h.id for h in q.holders), queue_workflow_id(name)]:
            with contextlib.suppress(RPCError):
                await env.client.get_workflow_handle(workflow_id).terminate("the test is over")


async def test_slots_go_first_come_first_served_and_never_beyond_the_limit(queue: Queue) -> None:
    await queue.start()
    h1, h2, h3, h4, h5 = [await queue.hold() for _ in range(5)]
    state = await queue.state()
    assert set(state.holders) == {h1.id, h2.id}
    assert [w.holder for w in state.waiters] == [h3.id, h4.id, h5.id]
    await h1.signal(SlotHolder.finish)
    state = await queue.until(lambda s: h1.id not in s.holders and h3.id in s.holders)
    assert set(state.holders) == {h2.id, h3.id} and [w.holder for w in state.waiters] == [h4.id, h5.id]
    assert await h3.query(SlotHolder.has_slot) and not await h4.query(SlotHolder.has_slot)


async def test_a_slot_held_by_a_terminated_call_is_reclaimed_within_a_minute(queue: Queue) -> None:
    await queue.start()
    h1, h2, h3 = [await queue.hold() for _ in range(3)]
    await h1.terminate("operator stopped the call")
    await queue.env.sleep(timedelta(seconds=61))
    state = await queue.until(lambda s: h1.id not in s.holders)
    assert set(state.holders) == {h2.id, h3.id} and not state.waiters


async def test_a_new_limit_applies_to_the_next_acquisition(queue: Queue) -> None:
    await queue.start()
    h1, h2, h3, h4 = [await queue.hold() for _ in range(4)]
    assert len((await queue.state()).holders) == 2
    queue.script.capacity = 3
    await queue.env.sleep(timedelta(seconds=6))  # past the few seconds a read limit is kept
    await h1.signal(SlotHolder.finish)
    state = await queue.until(lambda s: h1.id not in s.holders and len(s.holders) == 3)
    assert set(state.holders) == {h2.id, h3.id, h4.id} and state.capacity == 3


async def test_the_queue_continues_as_new_carrying_its_state(queue: Queue) -> None:
    await queue.start(QueueState(integration=queue.integration, continue_after_events=40))
    first_run = (
        await queue.env.client.get_workflow_handle(queue_workflow_id(queue.integration)).describe()
    ).run_id
    for _ in range(12):
        holder = await queue.hold()
        await queue.until(lambda s, h=holder: h.id in s.holders)  # type: ignore[misc]
        await holder.signal(SlotHolder.finish)
        await queue.until(lambda s, h=holder: h.id not in s.holders)  # type: ignore[misc]
    keeper = await queue.hold()
    handle = queue.env.client.get_workflow_handle(queue_workflow_id(queue.integration))
    description = await handle.describe()
    assert description.run_id != first_run
    history = await handle.fetch_history()
    assert len(history.events) < 80
    state = await queue.until(lambda s: keeper.id in s.holders)
    assert state.granted_total == 13


async def test_requests_that_come_while_slots_are_handed_out_are_served_at_once(queue: Queue) -> None:
    # A batch of calls asks at once: requests keep arriving while the queue is still telling the
    # first ones they have a slot. Each must be served then, not when the queue next wakes for its
    # reclaim check (30 s later; this server does not even skip to it while nobody awaits a result).
    queue.script.capacity = 100
    await queue.start()
    names = [f"holder-{uuid.uuid4().hex[:8]}" for _ in range(40)]
    handles = []
    for name in names:  # a stream of requests, as calls of a batch reach the queue one by one
        handles.append(
            await queue.env.client.start_workflow(
                SlotHolder.run, queue.integration, id=name, task_queue=f"happ-{queue.integration}"
            )
        )
        await asyncio.sleep(0.02)
    queue.holders.extend(handles)
    state = await queue.until(lambda s: len(s.holders) == 40, seconds=20)
    assert set(state.holders) == set(names) and not state.waiters


async def test_the_reclaim_timer_is_named(queue: Queue) -> None:
    await queue.start()
    await queue.hold()
    handle = queue.env.client.get_workflow_handle(queue_workflow_id(queue.integration))
    story = await eventually(
        lambda: handle.fetch_history(), lambda h: bool(timer_story(h)), 10, lambda h: "no timer started"
    )
    assert timer_story(story) == [("reclaim check", "running")]
