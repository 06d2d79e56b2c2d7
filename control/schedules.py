"""`Scheduled` entries as Temporal Schedules, id `{integration}:{handler}`, the framework's own
(`{integration}:retention:documents`), and `setup`.

await setup_integration(resources, client, integration)   # stores, then the schedules
await ensure_schedules(client, integration)          # create or update; drop ones no longer declared
await trigger_schedules(client, integration, "retry")
await fire_schedules(client, integration, "retry")   # {"example:retry": FiredRun(workflow_id, run_id)}
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from control.client import handler_search_attributes, temporal_errors
from happ_integ.errors import NotFound
from happ_integ.integration import Integration, Scheduled
from happ_integ.ops import Resources
from happ_integ.provision import SetupReport, prepare_integration
from happ_integ.stores.retention import CRON as RETENTION_CRON
from happ_integ.stores.retention import RetentionRun, retention_schedule_id
from happ_integ.temporal import INTEGRATION_KEY, HandlerRunInput, handler_workflow_id, schedule_id
from workflows.handler_run import HandlerRun
from workflows.retention import DocumentRetention


async def setup_integration(resources: Resources, client: Client, integration: Integration) -> SetupReport:
    """Everything an integration needs before its first request; safe to run again."""
    report = await prepare_integration(resources, integration)
    with temporal_errors():
        report.schedules = await ensure_schedules(client, integration)
    return report


def build_schedule(integration: Integration, entry: Scheduled) -> Schedule:
    run = HandlerRunInput(integration=integration.name, handler=entry.handler, payload=dict(entry.payload))
    return Schedule(
        action=ScheduleActionStartWorkflow(
            HandlerRun.run,
            run,
            # The schedule appends the fire time, so each run has its own id under this prefix.
            id=handler_workflow_id(integration.name, entry.handler, "scheduled"),
            task_queue=integration.task_queue,
            typed_search_attributes=handler_search_attributes(integration.name, entry.handler),
        ),
        spec=ScheduleSpec(cron_expressions=[entry.cron]),
        # A slow run is never doubled up by the next tick.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def retention_schedule(integration: Integration) -> Schedule:
    """The daily purge of the integration's old call documents (see happ_integ.stores.retention)."""
    sid = retention_schedule_id(integration.name)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DocumentRetention.run,
            RetentionRun(integration=integration.name),
            id=sid,
            task_queue=integration.task_queue,
            typed_search_attributes=integration_search_attributes(integration.name),
        ),
        spec=ScheduleSpec(cron_expressions=[RETENTION_CRON]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def integration_search_attributes(integration: str) -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(INTEGRATION_KEY, integration)])


async def ensure_schedules(client: Client, integration: Integration) -> dict[str, str]:
    """Create or update each declared schedule, and the framework's own (the documents' retention
    for an integration with a call flow); delete this integration's undeclared ones."""
    report: dict[str, str] = {}
    declared: dict[str, tuple[Schedule, TypedSearchAttributes]] = {
        schedule_id(integration.name, e.handler): (
            build_schedule(integration, e),
            handler_search_attributes(integration.name, e.handler),
        )
        for e in integration.scheduled
    }
    if integration.call_flow is not None:
        declared[retention_schedule_id(integration.name)] = (
            retention_schedule(integration),
            integration_search_attributes(integration.name),
        )
    for sid, (schedule, attributes) in declared.items():
        try:
            await client.create_schedule(sid, schedule, search_attributes=attributes)
            report[sid] = "created"
        except ScheduleAlreadyRunningError:

            def replace(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(sid).update(replace)
            report[sid] = "updated"
    async for listed in await client.list_schedules(query=f"{INTEGRATION_KEY.name} = '{integration.name}'"):
        if listed.id not in declared and listed.id.startswith(f"{integration.name}:"):
            await client.get_schedule_handle(listed.id).delete()
            report[listed.id] = "deleted"
    return report


async def trigger_schedules(
    client: Client, integration: Integration, handler: str | None = None
) -> list[str]:
    """Fire schedules now (see `fire_schedules`); the ids of the schedules fired."""
    return list(await fire_schedules(client, integration, handler))


@dataclass(frozen=True)
class FiredRun:
    """The run a trigger started: its workflow id (`…:scheduled-2026-01-05T10:00:07Z`) and run id."""

    workflow_id: str
    run_id: str


# How long a trigger waits for the Schedule to report the run it started (on the dev server, ~0.2 s).
TRIGGER_WAIT_SECONDS = 10.0


async def fire_schedules(
    client: Client,
    integration: Integration,
    handler: str | None = None,
    *,
    wait_seconds: float = TRIGGER_WAIT_SECONDS,
) -> dict[str, FiredRun | None]:
    """Fire schedules now, through the Schedule (so the run shows in its recent actions), and
    wait until it has started the run: schedule id → that run, or None if the Schedule had not
    reported it within `wait_seconds` (the trigger stands; the run shows later in the Web UI).

    A triggered run's workflow id ends with its start time to the second, so a second trigger in
    the same second as a run still going would get that run's id, and the Schedule drops such a
    start without a word (it used to: two `happ trigger` in a row, one run). So each trigger
    first waits for the next second when the Schedule's last run started in this one: triggers
    made one after another each start a run of their own. Triggers of one schedule sent at the
    same moment by different callers may still share a run.
    """
    entries = [e for e in integration.scheduled if handler in (None, e.handler)]
    if handler is not None and not entries:
        raise NotFound(f"integration {integration.name!r} has no scheduled handler {handler!r}")
    fired: dict[str, FiredRun | None] = {}
    for entry in entries:
        sid = schedule_id(integration.name, entry.handler)
        handle = client.get_schedule_handle(sid)
        try:
            before = (await handle.describe()).info.recent_actions
            if before:
                await _past_the_second_of(before[-1].scheduled_at)
            await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            raise NotFound(
                f"schedule {sid!r} does not exist yet: POST /{integration.name}/setup creates it"
            ) from None
        fired[sid] = await _run_started(handle, {_run(a) for a in before}, wait_seconds)
    return fired


def _run(action: ScheduleActionResult) -> FiredRun | None:
    started = action.action
    if not isinstance(started, ScheduleActionExecutionStartWorkflow):
        return None
    return FiredRun(started.workflow_id, started.first_execution_run_id)


async def _past_the_second_of(last_run: datetime) -> None:
    """Wait until the clock has left the second in which the Schedule started its last run."""
    left = last_run.replace(microsecond=0) + timedelta(seconds=1) - datetime.now(UTC)
    if left > timedelta(0):
        # Capped: a server clock ahead of ours must not hold the caller.
        await asyncio.sleep(min(left.total_seconds() + 0.05, 1.1))


async def _run_started(
    handle: ScheduleHandle, known: set[FiredRun | None], wait_seconds: float
) -> FiredRun | None:
    """The first run in the Schedule's recent actions that was not there before the trigger."""
    deadline = time.monotonic() + wait_seconds
    while True:
        for action in reversed((await handle.describe()).info.recent_actions):
            run = _run(action)
            if run is not None and run not in known:
                return run
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.1)
