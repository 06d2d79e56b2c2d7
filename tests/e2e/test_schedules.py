"""`scheduled` entries are Temporal Schedules; cron/trigger fires them through the Schedule."""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.client import Client, ScheduleActionResult, ScheduleHandle

from control.schedules import ensure_schedules, trigger_schedules
from happ_integ.integration import Integration, Scheduled
from happ_integ.temporal import INTEGRATION_KEY, HandlerRunResult, schedule_id
from integrations.example.handlers.retry import retry
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
    before = await _action_ids(handle)
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


async def _action_ids(handle: ScheduleHandle) -> set[str]:
    return {
        a.action.workflow_id + a.started_at.isoformat() for a in (await handle.describe()).info.recent_actions
    }


async def _actions_after(handle: ScheduleHandle, before: set[str]) -> list[ScheduleActionResult]:
    """The actions the schedule recorded since `before` (by identity: it keeps only the last 10)."""
    for _ in range(100):
        actions = (await handle.describe()).info.recent_actions
        new = [a for a in actions if a.action.workflow_id + a.started_at.isoformat() not in before]
        if new:
            return new
        await asyncio.sleep(0.1)
    pytest.fail("the schedule recorded no new action within 10 s")


async def test_cron_trigger_all_and_unknown(stack: Stack) -> None:
    handle = stack.temporal.get_schedule_handle("example:retry")
    before = await _action_ids(handle)
    everything = await stack.http.post("/example/cron/trigger", headers=stack.admin)
    assert everything.status_code == 200 and everything.json()["triggered"] == ["example:retry"]
    # Wait for that run, so it cannot touch the calls table under a later test.
    started = (await _actions_after(handle, before))[-1].action
    await stack.temporal.get_workflow_handle(started.workflow_id).result()
    unknown = await stack.http.post(
        "/example/cron/trigger", json={"handlerName": "nope"}, headers=stack.admin
    )
    assert unknown.status_code == 404


async def test_triggers_one_after_another_each_start_a_run(temporal_client: Client, unique: str) -> None:
    """A triggered run's workflow id ends with its start second. Two triggers within one second
    used to make one run: the second got the id of the first, still running, and the Schedule
    dropped it without a word (`happ trigger` twice in a row, one run)."""
    integration = Integration(
        name=f"sched{unique}",
        handlers=[retry],
        scheduled=[Scheduled(cron="0 0 1 1 *", handler="retry")],
    )
    await ensure_schedules(temporal_client, integration)
    sid = schedule_id(integration.name, "retry")
    query = f'{INTEGRATION_KEY.name} = "{integration.name}"'
    try:
        # No worker serves this integration: its runs stay open, as a slow run's would. Both
        # triggers go out at the start of one second.
        await asyncio.sleep(1.02 - time.time() % 1)
        assert await trigger_schedules(temporal_client, integration) == [sid]
        assert await trigger_schedules(temporal_client, integration) == [sid]
        deadline = time.monotonic() + 30
        while len(runs := [w.id async for w in temporal_client.list_workflows(query)]) < 2:
            if time.monotonic() > deadline:
                pytest.fail(f"two triggers, {len(runs)} run(s): {runs}")
            await asyncio.sleep(0.2)
        assert len(set(runs)) == 2, runs
    finally:
        async for workflow in temporal_client.list_workflows(query):
            await temporal_client.get_workflow_handle(workflow.id, run_id=workflow.run_id).terminate()
        await temporal_client.get_schedule_handle(sid).delete()
