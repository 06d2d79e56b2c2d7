"""Built-ins every integration has: /setup, /health, /cron/trigger.

`/health` (here and the gateway's own) answers anyone `{"status": "ok"}` from the process: a
liveness probe that touches no dependency, so a flood of them costs nothing. With the admin
token it checks every dependency for real (200, or 503 naming what is down).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.body import GuardedRoute
from api.deps import AdminDep, RuntimeDep, require_admin
from api.responses import error_responses
from api.runtime import ApiRuntime
from control.schedules import setup_integration, trigger_schedules
from happ_integ.health import HealthReport, check_health
from happ_integ.integration import Integration
from happ_integ.provision import SetupReport


class CronTrigger(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    handler_name: str | None = Field(default=None, alias="handlerName")


class CronTriggered(BaseModel):
    success: bool = True
    triggered: list[str]


def builtins_router(integration: Integration) -> APIRouter:
    router = APIRouter(tags=["Built-ins"], route_class=GuardedRoute)

    @router.post("/setup", response_model=SetupReport, responses=error_responses(401, 500, 503))
    async def setup(runtime: RuntimeDep, _: AdminDep) -> SetupReport:
        """Migrations, placeholder secrets, default configs and Schedules; safe to run again."""
        return await setup_integration(runtime.resources, await runtime.temporal(), integration)

    @router.get("/health", response_model=HealthReport, responses=HEALTH_RESPONSES)
    async def health(request: Request, runtime: RuntimeDep) -> JSONResponse:
        """Without credentials: `{"status": "ok"}`, the process is up (no dependency is touched).
        With the admin token: PostgreSQL, cache, secrets, Temporal and a worker polling this
        integration's task queue, each checked."""
        return await health_answer(request, runtime, integration)

    @router.post(
        "/cron/trigger", response_model=CronTriggered, responses=error_responses(400, 401, 404, 413, 422, 503)
    )
    async def cron_trigger(
        runtime: RuntimeDep, _: AdminDep, body: CronTrigger | None = Body(default=None)
    ) -> CronTriggered:
        """Fire every scheduled handler now, or the one named `handlerName`, through its Schedule."""
        handler = body.handler_name if body else None
        return CronTriggered(
            triggered=await trigger_schedules(await runtime.temporal(), integration, handler)
        )

    return router


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    # An Authorization header that is not the admin token.
    **error_responses(401),
    503: {
        "description": "(admin token) A dependency is down: which one is in `checks`",
        "model": HealthReport,
    },
}


async def health_answer(
    request: Request, runtime: ApiRuntime, integration: Integration | None
) -> JSONResponse:
    """Liveness for anyone; the real checks (database, Temporal, …) for the admin token only.

    A request with an Authorization header that is not the admin token is refused (401) rather
    than answered the liveness line: an operator asking for the report learns the token is wrong.
    """
    if "authorization" not in request.headers:
        return JSONResponse({"status": "ok"})
    require_admin(request, runtime)
    report = await check_health(runtime.resources_or_none, await runtime.temporal_or_none(), integration)
    return JSONResponse(report.model_dump(mode="json", exclude_none=True), 200 if report.ok else 503)
