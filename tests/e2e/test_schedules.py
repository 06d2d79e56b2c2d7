"""`scheduled` entries are Temporal Schedules; cron/trigger fires them through the Schedule."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import ScheduleActionResult, ScheduleHandle

from happ_integ.temporal import HandlerRunResult
from tests.e2e.conftest import Stack


async def test_setup_creates_the_schedule_idempotently(stack: Stack) -> None:
    again = await stack.http.post("/example/setup", headers=stack.admin)
    assert again.status_code == 200
    report = again.json()
    assert report["migrations_applied"] == [] and report["secrets_created"] == []
    assert report["schedules"] == {"example:retry": "updated"}
    described = await stack.temporal.get_schedule_handle("example:retry").describe()
    # The server keeps cron as calendar specs: check what it will do, every hour on the hour.
    upcoming = described.info.next_action_times[:2]
    assert all(t.minute == 0 and t.second == 0 for t in upcoming)
    assert (upcoming[1] - upcoming[0]).total_seconds() == 3600
    assert described.schedule.action.workflow == "HandlerRun"  # type: ignore[union-attr]


async def test_cron_trigger_runs_the_handler_through_its_schedule(stack: Stack) -> None:
    await stack.reset_calls()
    await stack.resources.pool.execute(
        "INSERT INTO example_calls (id, status, next_retry_at) VALUES ('sched', 'failed', now() - interval '1 minute')"
    )
    handle = stack.temporal.get_schedule_handle("example:retry")
    before = len((await handle.describe()).info.recent_actions)
    resp = await stack.http.post("/example/cron/trigger", json={"handlerName": "retry"}, headers=stack.admin)
    assert resp.status_code == 200 and resp.json() == {"success": True, "triggered": ["example:retry"]}
    actions = await _actions_after(handle, before)
    started = actions[-1].action
    assert started.workflow_id.startswith("example:handler:retry:scheduled")
    result = await stack.temporal.get_workflow_handle(
        started.workflow_id, result_type=HandlerRunResult
    ).result()
    assert result.response == {"success": True, "error": None, "processed": 1}
    assert (
        await stack.resources.pool.fetchval("SELECT status FROM example_calls WHERE id = 'sched'")
        == "initiated"
    )


async def _actions_after(handle: ScheduleHandle, before: int) -> list[ScheduleActionResult]:
    for _ in range(100):
        actions = (await handle.describe()).info.recent_actions
        if len(actions) > before:
            return actions
        await asyncio.sleep(0.1)
    pytest.fail("the schedule recorded no new action within 10 s")


async def test_cron_trigger_all_and_unknown(stack: Stack) -> None:
    handle = stack.temporal.get_schedule_handle("example:retry")
    before = len((await handle.describe()).info.recent_actions)
    everything = await stack.http.post("/example/cron/trigger", headers=stack.admin)
    assert everything.status_code == 200 and everything.json()["triggered"] == ["example:retry"]
    # Wait for that run, so it cannot touch the calls table under a later test.
    started = (await _actions_after(handle, before))[-1].action
    await stack.temporal.get_workflow_handle(started.workflow_id).result()
    unknown = await stack.http.post(
        "/example/cron/trigger", json={"handlerName": "nope"}, headers=stack.admin
    )
    assert unknown.status_code == 404
