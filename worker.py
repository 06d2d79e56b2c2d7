"""Entry point of a worker process (`happ worker`): one Temporal worker per integration task queue.

python worker.py                     # every integration under integrations/
happ worker --integration sofa
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Mapping, Sequence

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import worker_activities
from control.client import TemporalCallControl
from happ_integ import code_cache, registry, telemetry
from happ_integ.codec import require_payload_encryption
from happ_integ.integration import Integration, discover_integrations
from happ_integ.logs import LogSink, ReplaySafeSink, make_sink
from happ_integ.ops import Resources
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.temporal import connect_settings
from workflows import WORKFLOWS, call_metrics

# The framework and its libraries pass through the sandbox (imported once per process, and
# pydantic's import-time machinery stays outside). Integration handler code does not: HandlerRun
# imports it inside the sandbox, so non-deterministic calls in a handler are caught.
PASSTHROUGH = (
    "happ_integ",
    "activities",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "croniter",
    "asyncpg",
    "httpx",
    "cryptography",
    "phonenumbers",
    # The tracing interceptor's workflow side (only imported when OTEL_EXPORTER_OTLP_ENDPOINT is set).
    "opentelemetry",
)
# An integration's `models` and `config` modules hold only pydantic models: shared as they are,
# instead of being rebuilt for every run.
DATA_MODULES = ("models", "config")


def data_modules(integrations: Mapping[str, Integration]) -> list[str]:
    """`integrations.sofa.models`, `integrations.sofa.config`, … for the integrations given."""
    roots = {
        ".".join(d.fn.__module__.split(".")[:2]) for i in integrations.values() for d in i.handlers.values()
    }
    return sorted(
        f"{root}.{name}" for root in roots for name in DATA_MODULES if f"{root}.{name}" in sys.modules
    )


def sandbox_reimported(integrations: Mapping[str, Integration]) -> list[str]:
    """The top-level packages whose modules each sandboxed run imports again."""
    roots = {d.fn.__module__.split(".", 1)[0] for i in integrations.values() for d in i.handlers.values()}
    return sorted({WORKFLOWS[0].__module__.split(".", 1)[0], *roots})


def workflow_runner(integrations: Mapping[str, Integration] | None = None) -> SandboxedWorkflowRunner:
    modules = (*PASSTHROUGH, *data_modules(integrations or {}))
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules)
    )


def build_workers(
    client: Client,
    resources: Resources,
    integrations: Mapping[str, Integration],
    sink: LogSink,
    task_queue: str | None = None,
) -> list[Worker]:
    """One worker per integration; `task_queue` overrides the queue name (tests use a fresh one)."""
    # Replay-safe whatever sink is given: a durable run logs each step once, not once per replay.
    registry.install(integrations, ReplaySafeSink(sink), resources.settings)
    # The sandbox imports the workflows and the handlers anew for every run: compile them once.
    code_cache.install(sandbox_reimported(integrations))
    activities = worker_activities(resources, client, TemporalCallControl(resources, client))
    queues = [task_queue] if task_queue else [i.task_queue for i in integrations.values()]
    tuning = resources.settings
    return [
        Worker(
            client,
            task_queue=queue,
            workflows=WORKFLOWS,
            activities=activities,
            workflow_runner=workflow_runner(integrations),
            max_concurrent_activities=tuning.worker_max_activities,
            max_concurrent_workflow_tasks=tuning.worker_max_workflow_tasks,
            max_cached_workflows=tuning.worker_cache_size,
            max_concurrent_workflow_task_polls=tuning.worker_pollers,
            max_concurrent_activity_task_polls=tuning.worker_pollers,
        )
        for queue in queues
    ]


async def run_workers(
    settings: Settings, names: Sequence[str] | None = None, stop: asyncio.Event | None = None
) -> None:
    integrations = discover_integrations(names or settings.integrations)
    # Before any client: the SDK runtime serving its metrics and the calls' on HAPP_METRICS_PORT
    # (None when unset). Workers report through their client's runtime.
    runtime = telemetry.temporal_runtime(settings, call_metrics.HISTOGRAM_BUCKETS)
    # With OTEL_EXPORTER_OTLP_ENDPOINT set, the client carries the TracingInterceptor, which
    # every worker made from it applies to its workflows and activities.
    telemetry.tracer_provider(settings, "happ-worker")
    client = await connect_settings(settings, runtime)
    # Config and secrets from memory, ended by PostgreSQL's notifications: every CRM activity reads
    # its integration's secrets, every call its call_handling.
    resources = await open_resources(settings, integrations, max_pool=20, change_feed=True)
    workers = build_workers(client, resources, integrations, make_sink(settings.log_format))
    stop = stop or asyncio.Event()
    try:
        async with contextlib.AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            await stop.wait()
    finally:
        await close_resources(resources)


def main(names: Sequence[str] | None = None) -> None:
    settings = Settings()
    # No payload key, no worker (unless HAPP_PAYLOAD_ENCRYPTION=off): see happ_integ.codec.
    require_payload_encryption(settings, "happ worker")

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_workers(settings, names, stop)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
