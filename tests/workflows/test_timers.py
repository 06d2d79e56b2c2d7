"""Timers of the call workflows (`workflows.timers`) on the time-skipping test server: each named
for the Web UI, and cancelled when the wait it bounds ends early, except one about to fire."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from happ_integ.calls.models import CallStatus
from tests.workflows.harness import Call, handling, timer_story
from worker import workflow_runner
from workflows import timers


async def test_a_completed_calls_timers_are_named_and_end_with_their_waits(
    calls: Callable[..., object],
) -> None:
    call: Call = await calls()  # type: ignore[misc]
    await call.dialing(1)
    await call.event("call_start")
    await call.event("call_end", 45, conversation_id="conv-1")
    await call.transcription(45)
    assert (await call.result()).status is CallStatus.COMPLETED
    assert timer_story(await call.handle.fetch_history()) == [
        ("ring timeout", "cancelled"),
        ("longest call", "cancelled"),
        ("post-call timeout", "cancelled"),
    ]


async def test_a_retried_calls_delay_is_named_and_fires(calls: Callable[..., object]) -> None:
    call: Call = await calls(handling(retry_delays_seconds=[60], max_attempts=2))  # type: ignore[misc]
    await call.dialing(1)
    await call.event("call_end", 0, provider_status="busy")
    await call.until(lambda s: s.status is CallStatus.SCHEDULED)
    await call.env.sleep(timedelta(seconds=61))
    await call.dialing(2)
    await call.event("call_end", 0, provider_status="busy")
    assert (await call.result()).status is CallStatus.EXHAUSTED
    assert timer_story(await call.handle.fetch_history()) == [
        ("ring timeout", "cancelled"),
        ("retry delay", "fired"),
        ("ring timeout", "cancelled"),
    ]


async def test_a_timer_due_within_seconds_is_left_to_run_out(calls: Callable[..., object]) -> None:
    # A 5-second ring timeout: the call_start comes with less than a workflow task's timeout left
    # on it, so cancelling could cross its firing (see `workflows.timers`); the hour is cancelled.
    call: Call = await calls(handling(ring_timeout_seconds=5))  # type: ignore[misc]
    await call.dialing(1)
    await call.event("call_start")
    await call.until(lambda s: s.status is CallStatus.IN_PROGRESS)
    await call.event("call_end", 45, conversation_id="conv-1")
    await call.transcription(45)
    assert (await call.result()).status is CallStatus.COMPLETED
    story = timer_story(await call.handle.fetch_history())
    assert story[0][0] == "ring timeout" and story[0][1] != "cancelled"
    assert story[1:] == [("longest call", "cancelled"), ("post-call timeout", "cancelled")]


@workflow.defn(sandboxed=False)
class SlowWaiter:
    """Waits for `poke` up to one second; its signal handler holds the task past the timer's firing."""

    def __init__(self) -> None:
        self._poked = False

    @workflow.run
    async def run(self) -> bool:
        poked = await timers.wait(lambda: self._poked, timedelta(seconds=1), "one second")
        await workflow.sleep(5)  # the run goes on after the wait, as a call does
        return poked

    @workflow.signal
    def poke(self) -> None:
        time.sleep(1.6)  # the timer fires on the server while this workflow task runs
        self._poked = True


async def test_a_wait_that_ends_as_its_timer_fires_does_not_strand_the_run(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    # On this server a cancel of a timer that fired during the task is refused and the run never
    # gets another task; a timer that near its end is left to run out, so the run finishes.
    env = time_skipping_env
    task_queue = f"slow-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client, task_queue=task_queue, workflows=[SlowWaiter], workflow_runner=workflow_runner()
    ):
        handle = await env.client.start_workflow(SlowWaiter.run, id=task_queue, task_queue=task_queue)
        await asyncio.sleep(0.1)
        await handle.signal(SlowWaiter.poke)
        assert await asyncio.wait_for(handle.result(), 20)
        assert timer_story(await handle.fetch_history())[0] == ("one second", "fired")
