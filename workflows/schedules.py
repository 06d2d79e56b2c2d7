"""`Scheduled` entries as Temporal Schedules, id `{integration}:{handler}`, and `setup`.

await setup_integration(resources, client, integration)   # stores, then the schedules
await ensure_schedules(client, integration)          # create or update; drop ones no longer declared
await trigger_schedules(client, integration, "retry")
"""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from happ_integ.errors import NotFound
from happ_integ.integration import Integration, Scheduled
from happ_integ.ops import Resources
from happ_integ.setup import SetupReport, prepare_integration
from happ_integ.temporal import INTEGRATION_KEY, HandlerRunInput, handler_workflow_id, schedule_id
from workflows.control import handler_search_attributes, temporal_errors
from workflows.handler_run import HandlerRun


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


async def ensure_schedules(client: Client, integration: Integration) -> dict[str, str]:
    """Create or update each declared schedule; delete this integration's undeclared ones."""
    report: dict[str, str] = {}
    declared = {schedule_id(integration.name, e.handler): e for e in integration.scheduled}
    for sid, entry in declared.items():
        schedule = build_schedule(integration, entry)
        try:
            await client.create_schedule(
                sid, schedule, search_attributes=handler_search_attributes(integration.name, entry.handler)
            )
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
    """Fire schedules now, through the Schedule (so the run shows in its recent actions)."""
    entries = [e for e in integration.scheduled if handler in (None, e.handler)]
    if handler is not None and not entries:
        raise NotFound(f"integration {integration.name!r} has no scheduled handler {handler!r}")
    triggered = []
    for entry in entries:
        sid = schedule_id(integration.name, entry.handler)
        try:
            await client.get_schedule_handle(sid).trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            raise NotFound(
                f"schedule {sid!r} does not exist yet: POST /{integration.name}/setup creates it"
            ) from None
        triggered.append(sid)
    return triggered
