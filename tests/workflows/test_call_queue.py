"""`CallQueue` on the time-skipping test server: a slot per attempt, first come first served,
never more than the limit, reclaimed from a holder that died, and a history that stays small; and
its order once campaigns share it (`happ_integ.calls.queue_order`): a person's call before a
campaign's queued recipients, campaigns taking turns within their shares, a paused campaign
passed by until it is resumed. `CampaignCall` and `Gatekeeper` hold slots and gate campaigns
through `workflows.slots`, as `OutboundCall` and a campaign do."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from control.client import queue_state
from happ_integ.calls.contracts import QueueState, SlotPriority
from happ_integ.temporal import queue_workflow_id
from tests.workflows.fakes import CallScript, SlotHolder
from tests.workflows.harness import eventually, timer_story
from worker import workflow_runner
from workflows import CallQueue
from workflows.slots import Slots, gate_campaign


class Ask(BaseModel):
    """What a `CampaignCall` asks the queue for."""

    integration: str
    priority: SlotPriority = SlotPriority.PERSON
    campaign_id: str | None = None
    share: int | None = None


@workflow.defn(sandboxed=False)
class CampaignCall:
    """Holds a slot through `Slots.hold`, as an `OutboundCall` does, until told to `finish`."""

    @workflow.init
    def __init__(self, ask: Ask) -> None:
        self._slots = Slots(ask.integration)
        self._held = False
        self._done = False

    @workflow.run
    async def run(self, ask: Ask) -> None:
        hold = self._slots.hold(
            1, unless=lambda: False, priority=ask.priority, campaign_id=ask.campaign_id, share=ask.share
        )
        async with hold as held:
            self._held = held
            await workflow.wait_condition(lambda: self._done)

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.query
    def has_slot(self) -> bool:
        return self._held and not self._done


@workflow.defn(sandboxed=False)
class Gatekeeper:
    """Pauses or resumes a campaign in the queue, as a `Campaign` workflow does."""

    @workflow.run
    async def run(self, integration: str, campaign_id: str, paused: bool) -> None:
        await gate_campaign(integration, campaign_id, paused)


@dataclass
class Queue:
    env: WorkflowEnvironment
    script: CallScript
    integration: str
    holders: list[WorkflowHandle[Any, None]]  # every workflow the test started

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

    async def ask(
        self,
        name: str,
        priority: SlotPriority = SlotPriority.PERSON,
        campaign: str | None = None,
        share: int | None = None,
    ) -> WorkflowHandle[CampaignCall, None]:
        """A call named `name` (its workflow id), once the queue has taken its request."""
        ask = Ask(integration=self.integration, priority=priority, campaign_id=campaign, share=share)
        handle = await self.env.client.start_workflow(
            CampaignCall.run, ask, id=name, task_queue=f"happ-{self.integration}"
        )
        self.holders.append(handle)
        await self.until(lambda s: name in s.holders or any(w.holder == name for w in s.waiters))
        return handle

    async def gate(self, campaign: str, paused: bool) -> None:
        await self.env.client.execute_workflow(
            Gatekeeper.run,
            args=[self.integration, campaign, paused],
            id=f"gate-{uuid.uuid4().hex[:8]}",
            task_queue=f"happ-{self.integration}",
        )

    async def finish(self, name: str) -> None:
        await self.env.client.get_workflow_handle_for(CampaignCall.run, name).signal(CampaignCall.finish)

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
        workflows=[CallQueue, SlotHolder, CampaignCall, Gatekeeper],
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


# Once campaigns share the queue ------------------------------------------------------------------------


def within_limits(state: QueueState, capacity: int, shares: dict[str, int]) -> bool:
    """Whether the queue holds no more than `capacity` slots and each campaign no more than its share."""
    held = [state.holder_campaigns.get(h) for h in state.holders]
    return len(held) <= capacity and all(held.count(c) <= share for c, share in shares.items())


async def test_a_persons_call_goes_before_ten_queued_campaign_calls(queue: Queue) -> None:
    await queue.start()
    campaign = [f"x{i}-{uuid.uuid4().hex[:6]}" for i in range(12)]
    for name in campaign:
        await queue.ask(name, SlotPriority.CAMPAIGN, "X", share=10)
    person = await queue.ask(f"person-{uuid.uuid4().hex[:6]}")
    state = await queue.state()
    assert set(state.holders) == set(campaign[:2])
    assert [w.holder for w in state.waiters] == [*campaign[2:], person.id]
    await queue.finish(campaign[0])
    state = await queue.until(lambda s: campaign[0] not in s.holders and len(s.holders) == 2)
    assert set(state.holders) == {campaign[1], person.id}
    assert [w.holder for w in state.waiters] == campaign[2:]
    assert await person.query(CampaignCall.has_slot)


async def test_two_campaigns_share_the_capacity_in_turns_within_their_shares(queue: Queue) -> None:
    queue.script.capacity = 4
    await queue.start()
    tag = uuid.uuid4().hex[:6]
    blockers = [f"p{i}-{tag}" for i in range(4)]
    for name in blockers:
        await queue.ask(name)
    a = [f"a{i}-{tag}" for i in range(4)]
    b = [f"b{i}-{tag}" for i in range(4)]
    for name in [*a, *b]:  # all of A's calls came before B's
        await queue.ask(name, SlotPriority.CAMPAIGN, name[0].upper(), share=3)
    shares = {"A": 3, "B": 3}
    served: list[str] = []

    async def end(name: str, holding: int = 4) -> None:
        """End `name`'s call and note who got its slot (nobody, when `holding` is 3)."""
        before = set((await queue.state()).holders)
        await queue.finish(name)
        state = await queue.until(lambda s: name not in s.holders and len(s.holders) == holding)
        assert within_limits(state, 4, shares), state
        served.extend(set(state.holders) - before)

    for name in blockers:
        await end(name)
    assert served == [a[0], b[0], a[1], b[1]]  # turns alternate; first come first served within
    await end(a[0])
    await end(a[1])
    assert served[4:] == [a[2], b[2]]  # A's turn, then B's: B now holds its share of 3
    await end(a[2])
    assert served[6:] == [a[3]]
    await end(a[3], holding=3)  # B is at its share: the slot stays free
    await queue.env.sleep(timedelta(seconds=1))
    state = await queue.state()
    assert len(state.holders) == 3 and [w.holder for w in state.waiters] == [b[3]]
    await end(b[0], holding=3)  # its slot goes to B's last call, under its share again
    assert served[7:] == [b[3]]
    assert within_limits(await queue.state(), 4, shares)


async def test_a_paused_campaign_waits_without_blocking_anyone_until_resumed(queue: Queue) -> None:
    await queue.start()
    tag = uuid.uuid4().hex[:6]
    p0, p1 = f"p0-{tag}", f"p1-{tag}"
    c1, c2, d1 = f"c1-{tag}", f"c2-{tag}", f"d1-{tag}"
    await queue.ask(p0)
    await queue.ask(p1)
    await queue.ask(c1, SlotPriority.CAMPAIGN, "C")
    await queue.ask(c2, SlotPriority.CAMPAIGN, "C")
    await queue.ask(d1, SlotPriority.CAMPAIGN, "D")
    await queue.gate("C", paused=True)
    await queue.gate("C", paused=True)  # a repeat changes nothing
    assert (await queue.state()).paused_campaigns == ["C"]
    await queue.finish(p0)
    state = await queue.until(lambda s: p0 not in s.holders and len(s.holders) == 2)
    assert set(state.holders) == {p1, d1}  # D's call came after C's: C's are passed by
    await queue.finish(p1)
    state = await queue.until(lambda s: p1 not in s.holders)
    assert set(state.holders) == {d1} and [w.holder for w in state.waiters] == [c1, c2]
    person = f"person-{tag}"
    await queue.ask(person)
    state = await queue.until(lambda s: person in s.holders)
    assert set(state.holders) == {d1, person} and [w.holder for w in state.waiters] == [c1, c2]
    await queue.finish(d1)
    state = await queue.until(lambda s: d1 not in s.holders)
    assert set(state.holders) == {person}  # still paused: the free slot stays free
    await queue.gate("C", paused=False)
    state = await queue.until(lambda s: c1 in s.holders)
    assert set(state.holders) == {person, c1} and not state.paused_campaigns
    await queue.gate("C", paused=False)  # a repeat changes nothing
    await queue.finish(person)
    state = await queue.until(lambda s: c2 in s.holders)
    assert set(state.holders) == {c1, c2} and not state.waiters
    assert state.holder_campaigns == {c1: "C", c2: "C"}  # released holders are forgotten


async def test_gating_a_campaign_starts_the_queue_when_it_is_not_running(queue: Queue) -> None:
    await queue.gate("C", paused=True)
    state = await queue.until(lambda s: s.paused_campaigns == ["C"])
    assert not state.holders and not state.waiters
