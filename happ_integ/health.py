"""Health checks that touch each dependency for real.

report = await check_health(resources, client, integration)   # integration=None: the whole process
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from happ_integ.integration import Integration
from happ_integ.ops import Resources
from happ_integ.ops.store import secret_status

CHECK_TIMEOUT = 3.0
# A worker long-polls for about a minute; one seen within this window is taken as alive.
POLLER_FRESHNESS = timedelta(minutes=2)


class Check(BaseModel):
    ok: bool
    latency_ms: float
    detail: str | dict[str, object] | None = None


class HealthReport(BaseModel):
    status: str
    checks: dict[str, Check] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def public(self) -> HealthReport:
        """States and timings only: details (versions, missing secret names, errors) are for operators."""
        return HealthReport(
            status=self.status,
            checks={name: Check(ok=c.ok, latency_ms=c.latency_ms) for name, c in self.checks.items()},
        )


async def _timed(fn: Callable[[], Awaitable[str | dict[str, object] | None]]) -> Check:
    started = time.monotonic()
    try:
        detail = await asyncio.wait_for(fn(), CHECK_TIMEOUT)
        return Check(ok=True, latency_ms=round((time.monotonic() - started) * 1000, 2), detail=detail)
    except Exception as exc:  # a health check reports every failure, whatever its kind
        message = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        return Check(ok=False, latency_ms=round((time.monotonic() - started) * 1000, 2), detail=message[:300])


async def check_health(
    resources: Resources | None, client: Client | None, integration: Integration | None = None
) -> HealthReport:
    checks: dict[str, Awaitable[Check]] = {}

    async def postgres() -> str:
        assert resources is not None, "not connected"
        return str(await resources.pool.fetchval("SHOW server_version"))

    async def temporal() -> str:
        assert client is not None, "not connected"
        await client.service_client.check_health()
        return client.namespace

    checks["postgres"] = _timed(postgres)
    checks["temporal"] = _timed(temporal)
    if integration is not None:
        name = integration.name

        async def cache() -> None:
            assert resources is not None, "not connected"
            store = resources.cache(name)
            probe = f"__health__:{time.time_ns()}"
            await store.set(probe, {"ok": True}, 60)
            if await store.get(probe) != {"ok": True}:
                raise RuntimeError("cache read back a different value")
            await store.delete(probe)

        async def creds() -> dict[str, object]:
            assert resources is not None, "not connected"
            status = await secret_status(resources, name)
            return {"set": sum(status.values()), "missing": [n for n, is_set in status.items() if not is_set]}

        async def worker() -> str:
            assert client is not None, "not connected"
            resp = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=integration.task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
            )
            now = datetime.now(UTC)
            fresh = [p for p in resp.pollers if now - p.last_access_time.ToDatetime(UTC) < POLLER_FRESHNESS]
            if not fresh:
                raise RuntimeError(f"no worker is polling task queue {integration.task_queue}")
            return f"{len(fresh)} poller(s) on {integration.task_queue}"

        checks["cache"] = _timed(cache)
        checks["creds"] = _timed(creds)
        checks["worker"] = _timed(worker)
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    return HealthReport(status="ok" if all(c.ok for c in results.values()) else "degraded", checks=results)
