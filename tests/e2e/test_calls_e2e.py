"""Whole calls, end to end: 40 calls through two worker processes under a limit of 3 at once,
then a worker killed with SIGKILL in the middle of calls; every call completes and every CRM write
is made exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulator.calls import Play
from tests.e2e.call_stack import CallStack, phone, start_call_stack

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
async def calls(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    stack = await start_call_stack(
        pg_url,
        tmp_path_factory.mktemp("call-logs"),
        Play.answered(30, talk_seconds=0.3),
    )
    try:
        yield stack
    finally:
        await stack.close()


def assert_written_once(stack: CallStack, numbers: list[str]) -> None:
    for number in numbers:
        writes = stack.crm_writes(number)
        assert writes == {"update-record": 1, "create-call-log": 1, "create-comment": 1}, (number, writes)
        assert stack.sims.nethunt.records[stack.records[number]].fields["Status"] == "Interested"


async def test_forty_calls_two_workers_never_more_than_three_at_once(calls: CallStack) -> None:
    calls.start_worker()
    calls.start_worker()
    numbers = [phone(n) for n in range(1, 41)]
    calls.add_leads(numbers)
    calls.sims.voice.reset_in_flight()
    call_ids = await calls.originate(numbers)
    rows = await calls.until_all(call_ids, {"completed"}, seconds=300)
    assert len(rows) == 40
    assert calls.sims.voice.max_in_flight <= 3, calls.sims.voice.in_flight_timeline
    assert calls.sims.voice.max_in_flight == 3  # the limit was used, not just respected
    assert_written_once(calls, numbers)
    # Each call's agent-init was answered from the stored lookup, with our call id.
    answered = [d for d in calls.sims.voice.deliveries if d.kind == "agent_init"]
    assert all(d.response["dynamic_variables"].get("call_id") in call_ids for d in answered)


async def test_a_worker_killed_mid_call_loses_nothing_and_writes_nothing_twice(
    calls: CallStack, tmp_path: Path
) -> None:
    while len([w for w in calls.workers if w.proc.poll() is None]) < 2:
        calls.start_worker()
    numbers = [phone(n) for n in range(101, 121)]
    calls.add_leads(numbers)
    call_ids = await calls.originate(numbers)
    # Kill one worker while calls are dialing and talking.
    await calls.until(lambda: calls.sims.voice.in_flight >= 2, seconds=60)
    victim = next(w for w in calls.workers if w.proc.poll() is None)
    victim.kill()
    calls.start_worker()
    await calls.until_all(call_ids, {"completed"}, seconds=300)
    assert calls.sims.voice.max_in_flight <= 3
    assert_written_once(calls, numbers)
