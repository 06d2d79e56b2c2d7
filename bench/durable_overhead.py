"""What a durable handler run costs over the same number of bare activities, on the dev server.

Baseline: a minimal workflow that runs one local activity doing an INSERT over asyncpg, as
`ctx.db.insert` does in a durable run (Temporal's own cost for one database step).
Measured: `HandlerRun` of the example's create-order (one `db.insert`), which adds payload
validation, the handler run inside the sandbox, the step's summary and logging.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from temporalio import activity, workflow
from temporalio.worker import Worker

from bench.context_overhead import Result
from control.schedules import setup_integration
from happ_integ.embedded import EmbeddedPostgres, EmbeddedTemporal
from happ_integ.embedded.process import free_port
from happ_integ.integration import discover_integrations
from happ_integ.logs import CaptureSink
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.temporal import HandlerRunInput, HandlerRunResult, connect_client
from worker import build_workers, workflow_runner

RUNS = 40
MAX_RATIO = 3.0


_pools: list[Any] = []  # the pool the baseline's activity inserts with


@activity.defn(name="bench.insert")
async def insert(value: str) -> str:
    await _pools[0].execute("INSERT INTO bench_orders (id) VALUES ($1)", value)
    return value


@workflow.defn(name="BenchOneActivity", sandboxed=False)
class OneActivity:
    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_local_activity(
            insert, value, start_to_close_timeout=timedelta(seconds=10)
        )


async def run() -> Result:
    with tempfile.TemporaryDirectory() as folder:
        pg = EmbeddedPostgres(Path(folder) / "pg", port=free_port(), fsync=False)
        temporal = EmbeddedTemporal(db_file=None, port=free_port(), ui_port=None)
        pg.start()
        temporal.start()
        try:
            return await _measure(pg.url, temporal.address)
        finally:
            temporal.stop()
            pg.stop()


async def _measure(database_url: str, address: str) -> Result:
    settings = Settings(
        DATABASE_URL=database_url,
        TEMPORAL_ADDRESS=address,
        HAPP_SECRET_KEY=Fernet.generate_key().decode(),
        HAPP_LOG_FORMAT="json",
    )
    integrations = discover_integrations(["example"])
    client = await connect_client(address)
    resources = await open_resources(settings, integrations)
    await setup_integration(resources, client, integrations["example"])
    await resources.pool.execute("CREATE TABLE bench_orders (id text PRIMARY KEY)")
    _pools[:] = [resources.pool]
    workers = [
        *build_workers(client, resources, integrations, CaptureSink()),
        Worker(
            client,
            task_queue="bench",
            workflows=[OneActivity],
            activities=[insert],
            workflow_runner=workflow_runner(),
        ),
    ]
    async with asyncio.TaskGroup() as group:
        for w in workers:
            group.create_task(w.run())
        try:
            baseline = await _time(
                lambda i: client.execute_workflow(
                    "BenchOneActivity", f"v{i}", id=f"bench-{uuid.uuid4().hex}", task_queue="bench"
                )
            )
            measured = await _time(
                lambda i: client.execute_workflow(
                    "HandlerRun",
                    HandlerRunInput(
                        integration="example",
                        handler="create-order",
                        payload={"phone": "+380", "product_id": f"p{i}"},
                    ),
                    id=f"example:handler:create-order:{uuid.uuid4().hex}",
                    task_queue="happ-example",
                    result_type=HandlerRunResult,
                )
            )
        finally:
            for w in workers:
                await w.shutdown()
    await close_resources(resources)
    return Result(
        "durable create-order vs a workflow with one local-activity INSERT",
        baseline,
        measured,
        MAX_RATIO,
        RUNS,
    )


async def _time(start: object) -> float:
    run = start  # a callable taking the run number, returning an awaitable
    await run(-1)  # type: ignore[operator]  # warm-up: first imports and connections
    began = time.perf_counter()
    for i in range(RUNS):
        await run(i)  # type: ignore[operator]
    return time.perf_counter() - began
